"""HTTP routes of the auth server: thin parsing and answering over the service modules."""
