"""``authmesh token``: read a token like jwt.io, and say *why* a verifier rejects it."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from authmesh.cli.errors import EXIT_INVALID
from authmesh.inspector.introspection import IntrospectionClient
from authmesh.inspector.reading import inspect_token
from authmesh.inspector.trusted_keys import load_key, load_keyset
from authmesh.inspector.verdict import after_introspection, judge
from authmesh.inspector.view import render, to_json
from authmesh.jose import KeySet, VerifyPolicy

__all__ = ["decode", "token_app"]

token_app = typer.Typer(
    help="Decode and verify tokens.", no_args_is_help=True, pretty_exceptions_show_locals=False
)

_DEFAULT_TYPE = "at+jwt"
_DEFAULT_LEEWAY = 30.0


@token_app.callback()
def _token() -> None:
    """Decode and verify tokens."""


def _read_token(token: str) -> str:
    text = sys.stdin.read() if token == "-" else token
    text = text.strip()
    if not text:
        where = " on standard input" if token == "-" else ""
        raise typer.BadParameter(f"no token given{where}", param_hint="TOKEN")
    return text


def _accepted_types(typ: str | None, any_type: bool) -> frozenset[str] | None:
    """``typ`` with and without the optional ``application/`` prefix (RFC 7515 §4.1.9)."""
    if any_type:
        return None
    bare = (typ or _DEFAULT_TYPE).removeprefix("application/")
    return frozenset({bare, f"application/{bare}"})


def _trusted_keys(jwks: str | None, key: Path | None, timeout: float) -> KeySet | None:
    if jwks is not None and key is not None:
        raise typer.BadParameter("give either --jwks or --key, not both", param_hint="--jwks")
    if jwks is not None:
        return load_keyset(jwks, timeout=timeout)
    if key is not None:
        return load_key(key)
    return None


def _introspection(
    url: str | None, client_id: str | None, client_secret: str | None, timeout: float
) -> IntrospectionClient | None:
    if url is None:
        return None  # credentials from the environment alone ask nothing
    assert client_id is not None and client_secret is not None  # checked with the options
    return IntrospectionClient.at(
        url, client_id=client_id, client_secret=client_secret, timeout=timeout
    )


@token_app.command("decode")
def decode(
    token: Annotated[
        str, typer.Argument(help="The token, or - to read it from stdin.", show_default=False)
    ],
    jwks: Annotated[
        str | None,
        typer.Option(metavar="URL|FILE", help="Verify with this JWKS (URL, or JWKS/JWK/PEM file)."),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Verify with this key (JWK or PEM; HS256: a JWK oct)."),
    ] = None,
    issuer: Annotated[str | None, typer.Option(help="The only accepted iss.")] = None,
    audience: Annotated[
        list[str] | None, typer.Option(help="An accepted aud (repeatable).")
    ] = None,
    leeway: Annotated[
        float | None,
        typer.Option(min=0, max=300, help="Seconds of clock skew tolerated (default: 30)."),
    ] = None,
    typ: Annotated[
        str | None, typer.Option("--type", help=f"The accepted typ (default: {_DEFAULT_TYPE}).")
    ] = None,
    any_type: Annotated[bool, typer.Option("--any-type", help="Accept any typ.")] = False,
    introspect: Annotated[
        str | None,
        typer.Option(
            metavar="URL",
            help="Ask this RFC 7662 introspection endpoint (or the issuer's discovery URL) "
            "whether the token was revoked.",
        ),
    ] = None,
    client_id: Annotated[
        str | None,
        typer.Option(envvar="AUTHMESH_CLIENT_ID", help="The client asking --introspect."),
    ] = None,
    client_secret: Annotated[
        str | None,
        typer.Option(
            envvar="AUTHMESH_CLIENT_SECRET",
            help="Its secret (better from the environment: other users can read a command line).",
        ),
    ] = None,
    timeout: Annotated[
        float, typer.Option(min=0.1, max=120, help="Seconds to wait for a JWKS or other URL.")
    ] = 10.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object (for scripts).")
    ] = False,
) -> None:
    """Show a token's header and claims, warn about what it leaks, and verify it if given keys.

    A valid token is checked for revocation only with --introspect: a signature
    says nothing about a blocked user or an ended session.

    Exit status: 0 valid (or decoded without verification), 1 invalid (revoked
    included) or undecodable, 2 usage error (bad option, unreadable key,
    unreachable URL, credentials refused).
    """
    if typ is not None and any_type:
        raise typer.BadParameter("give either --type or --any-type, not both", param_hint="--type")
    verify_options = (issuer, audience, leeway, typ, any_type or None, introspect)
    if jwks is None and key is None and any(o is not None for o in verify_options):
        raise typer.BadParameter(
            "--issuer, --audience, --leeway, --type, --any-type and --introspect "
            "need --jwks or --key",
            param_hint="--jwks",
        )
    if introspect is not None and (client_id is None or client_secret is None):
        raise typer.BadParameter(
            "--introspect needs --client-id and --client-secret", param_hint="--introspect"
        )
    text = _read_token(token)
    keys = _trusted_keys(jwks, key, timeout)
    introspection = _introspection(introspect, client_id, client_secret, timeout)
    policy = VerifyPolicy(
        issuer=issuer,
        audience=frozenset(audience) if audience else None,
        types=_accepted_types(typ, any_type),
        leeway=_DEFAULT_LEEWAY if leeway is None else leeway,
    )
    now = time.time()
    seen = inspect_token(text, max_token_bytes=policy.max_token_bytes)
    verdict = judge(text, seen, keys, policy, now)
    if introspection is not None and verdict.status == "valid":
        active = introspection.is_active(text)
        verdict = after_introspection(verdict, endpoint=introspection.endpoint, active=active)
    if as_json:
        typer.echo(json.dumps(to_json(seen, verdict, now), indent=2, allow_nan=False))
    else:
        render(Console(highlight=False), seen, verdict, now)
    if not verdict.ok:
        raise typer.Exit(EXIT_INVALID)
