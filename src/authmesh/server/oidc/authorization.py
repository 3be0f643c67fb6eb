"""The authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1), validated.

Validation runs in the order that keeps the server from being an open
redirector: first the client and its redirect URI (failures are shown on an
error page), then everything else (failures go back to the client).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

from authmesh.server.oidc.errors import AuthorizationError, UntrustedRedirect
from authmesh.server.oidc.pkce import check_challenge
from authmesh.server.oidc.redirect_uris import redirect_uri_matches
from authmesh.server.oidc.scopes import resolve_requested_scope
from authmesh.store.models import ClientRow

__all__ = [
    "PROMPTS",
    "AuthorizationRequest",
    "requested_client_id",
    "validate_authorization_request",
]

PROMPTS = frozenset({"none", "login", "consent", "select_account"})
_MAX_PARAM = 1024  # state, nonce, login_hint: they travel through the sign-in form


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthorizationRequest:
    """A validated authorization request."""

    client_id: str
    redirect_uri: str
    scope: str
    code_challenge: str
    state: str | None = None
    nonce: str | None = None
    prompt: tuple[str, ...] = ()
    max_age: int | None = None
    login_hint: str | None = None
    acr_values: tuple[str, ...] = ()

    @property
    def scopes(self) -> list[str]:
        """The granted scope as a list."""
        return self.scope.split()

    def to_json(self) -> dict[str, object]:
        """The request as JSON, to carry it through the sign-in and consent forms."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> AuthorizationRequest:
        """The inverse of :meth:`to_json` (the data comes from a signed form field)."""
        prompt = data.get("prompt") or ()
        max_age = data.get("max_age")
        acr_values = data.get("acr_values") or ()
        return cls(
            client_id=str(data["client_id"]),
            redirect_uri=str(data["redirect_uri"]),
            scope=str(data["scope"]),
            code_challenge=str(data["code_challenge"]),
            state=_opt(data.get("state")),
            nonce=_opt(data.get("nonce")),
            prompt=tuple(str(p) for p in prompt) if isinstance(prompt, list | tuple) else (),
            max_age=max_age if isinstance(max_age, int) else None,
            login_hint=_opt(data.get("login_hint")),
            acr_values=(
                tuple(str(a) for a in acr_values) if isinstance(acr_values, list | tuple) else ()
            ),
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def requested_client_id(params: Mapping[str, str]) -> str:
    """The ``client_id`` an authorization request names.

    Raises:
        UntrustedRedirect: it names none.
    """
    client_id = params.get("client_id")
    if not client_id:
        raise UntrustedRedirect("the request names no client (client_id is missing)")
    return client_id


def validate_authorization_request(
    params: Mapping[str, str], client: ClientRow | None
) -> AuthorizationRequest:
    """Check every parameter of an authorization request, ``client`` being the one it
    names (:func:`requested_client_id`) as read from the store.

    Raises:
        UntrustedRedirect: no known client, or a redirect URI it did not register.
        AuthorizationError: anything else, to be sent to the redirect URI.
    """
    if client is None:
        raise UntrustedRedirect("the application that sent you here is not registered")
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise UntrustedRedirect("the request has no redirect_uri")
    if not redirect_uri_matches(client.redirect_uris, redirect_uri):
        raise UntrustedRedirect("the redirect_uri is not registered for this application")
    return _validate_rest(params, client, redirect_uri)


def _validate_rest(
    params: Mapping[str, str], client: ClientRow, redirect_uri: str
) -> AuthorizationRequest:
    for name in ("request", "request_uri"):
        if name in params:
            raise AuthorizationError(
                f"{name}_not_supported", f"the {name} parameter is not supported"
            )
    response_type = params.get("response_type")
    if response_type is None:
        raise AuthorizationError("invalid_request", "response_type is required")
    if response_type != "code":
        raise AuthorizationError(
            "unsupported_response_type", "only response_type=code is supported"
        )
    if params.get("response_mode", "query") != "query":
        raise AuthorizationError("invalid_request", "only response_mode=query is supported")
    if "authorization_code" not in client.grant_types:
        raise AuthorizationError(
            "unauthorized_client", "this client may not use the authorization code flow"
        )
    for name in ("state", "nonce", "login_hint", "acr_values"):
        if len(params.get(name, "")) > _MAX_PARAM:
            raise AuthorizationError("invalid_request", f"{name} is too long")
    try:
        challenge = check_challenge(
            params.get("code_challenge"), params.get("code_challenge_method")
        )
    except ValueError as exc:
        raise AuthorizationError("invalid_request", str(exc)) from None
    try:
        scope = resolve_requested_scope(params.get("scope"), client.scopes)
    except ValueError as exc:
        raise AuthorizationError("invalid_scope", str(exc)) from None
    prompt = tuple(dict.fromkeys(params.get("prompt", "").split()))
    if set(prompt) - PROMPTS:
        raise AuthorizationError("invalid_request", "prompt must be among none, login, consent")
    if "none" in prompt and len(prompt) > 1:
        raise AuthorizationError("invalid_request", "prompt=none cannot be combined")
    return AuthorizationRequest(
        client_id=client.client_id,
        redirect_uri=redirect_uri,
        scope=scope,
        code_challenge=challenge,
        state=params.get("state"),
        nonce=params.get("nonce"),
        prompt=prompt,
        max_age=_max_age(params.get("max_age")),
        login_hint=params.get("login_hint"),
        # OIDC Core §3.1.2.1: voluntary, in order of preference; see flow.py for their use.
        acr_values=tuple(dict.fromkeys(params.get("acr_values", "").split()))[:10],
    )


def _max_age(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or len(value) > 9:
        raise AuthorizationError("invalid_request", "max_age must be a non-negative integer")
    return int(value)
