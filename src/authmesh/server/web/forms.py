"""Signed form state and CSRF tokens for the sign-in pages.

The pending authorization request travels through the sign-in and consent
forms signed (itsdangerous, keyed by a server secret), so no unauthenticated
request writes to the database. CSRF protection is a signed double submit:
the form's token is an HMAC of a random value in an HttpOnly cookie, so a page
on another site can neither read nor forge it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

from authmesh.server.web.errors import InvalidForm

__all__ = ["FormSigner"]

#: How long a sign-in form stays usable after it was shown.
FORM_MAX_AGE = 15 * 60


class FormSigner:
    """Signs form state and makes and checks CSRF tokens with one server secret."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret
        self._serializer = URLSafeTimedSerializer(secret, salt="authmesh-form")

    def dumps(self, purpose: str, data: dict[str, Any]) -> str:
        """Sign ``data`` for one form (``purpose`` keeps forms from standing in for each other)."""
        return self._serializer.dumps({"p": purpose, "d": data})

    def loads(self, purpose: str, token: str | None) -> dict[str, Any]:
        """The data of a signed form field.

        Raises:
            InvalidForm: missing, forged, for another form, or older than the limit.
        """
        if not token:
            raise InvalidForm("the form is incomplete")
        try:
            payload = self._serializer.loads(token, max_age=FORM_MAX_AGE)
        except BadData:
            raise InvalidForm("the form has expired or was not made by this server") from None
        if not isinstance(payload, dict) or payload.get("p") != purpose:
            raise InvalidForm("the form was not made for this step")
        data = payload.get("d")
        if not isinstance(data, dict):
            raise InvalidForm("the form is incomplete")
        return data

    @staticmethod
    def new_cookie_value() -> str:
        """A fresh random value for the CSRF cookie."""
        return secrets.token_urlsafe(32)

    def csrf_token(self, cookie_value: str) -> str:
        """The token a form carries for the browser holding ``cookie_value``."""
        return hmac.new(self._secret, b"csrf:" + cookie_value.encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, cookie_value: str | None, presented: str | None) -> None:
        """Raises:
        InvalidForm: no cookie, no token, or a token for another cookie.
        """
        if not cookie_value or not presented:
            raise InvalidForm("the form was not sent from this site")
        expected = self.csrf_token(cookie_value).encode()
        # Bytes: compare_digest refuses str with non-ASCII characters, which anyone can send.
        if not hmac.compare_digest(expected, presented.encode("utf-8", "surrogatepass")):
            raise InvalidForm("the form was not sent from this site")
