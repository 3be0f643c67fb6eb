"""Fixtures for the whole suite: the authmesh test kit's pytest plugin."""

pytest_plugins = ["authmesh.testing.plugin"]
