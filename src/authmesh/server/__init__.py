"""The authmesh authentication server."""
