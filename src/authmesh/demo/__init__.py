"""The demo system: the auth server, an orders REST service and a catalog GraphQL service."""
