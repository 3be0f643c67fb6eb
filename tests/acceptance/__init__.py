"""Acceptance tests: the real auth server and real SDK-protected services over HTTP."""
