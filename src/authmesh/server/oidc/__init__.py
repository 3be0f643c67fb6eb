"""OpenID Connect provider for browsers: authorization code + PKCE, sign-in, SSO, logout.

Everything here is free of HTTP: the route modules parse requests, call these
functions and render what they return, like the JSON APIs and the CLI do.
"""
