"""Helpers only this project's test suites need; the reusable ones are in authmesh.testing."""
