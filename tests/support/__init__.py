"""Helpers shared by the test suites: real servers on free loopback ports, databases."""
