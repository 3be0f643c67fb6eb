"""The web consoles (account page, admin console): how they sign in, free of HTTP.

The auth server is its own first-party client, ``authmesh-console``: a console
page without a console session sends the browser through ``/authorize`` (code +
PKCE S256) like any other app, and the callback exchanges the code in-process.
The console session is the session that exchange opened (a child of the browser
sign-in), named by an HttpOnly cookie whose secret the database keeps only as a
hash; block, password change, logout everywhere and sign-out end it with the rest.
"""
