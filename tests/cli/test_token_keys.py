"""``authmesh token decode --jwks/--key``: where trusted keys come from, and their failures."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from authmesh.jose import Key, KeySet, sign_jwt

ISSUER = "https://auth.example.com"  # what the conftest's claims fixture issues
AUDIENCE = "orders"
WriteDoc = Callable[..., Path]
MakeToken = Callable[..., str]
Run = Callable[..., Result]


def test_key_file_single_jwk_and_pem(
    run: Run, make_token: MakeToken, keys: dict[str, Key], tmp_path: Path, jwk_file: WriteDoc
) -> None:
    token = make_token("ES256")
    jwk = jwk_file(keys["ES256"].public().to_jwk())
    assert run("token", "decode", token, "--key", str(jwk)).exit_code == 0
    pem = tmp_path / "es256.pem"
    pem.write_bytes(keys["ES256"].public().to_pem())
    # A PEM carries no kid: the key's kid is its thumbprint, the token names another.
    result = run("token", "decode", token, "--jwks", str(pem))
    assert result.exit_code == 1
    assert "unknown_kid" in result.stdout
    thumb_token = sign_jwt(
        {"exp": int(time.time()) + 60},
        Key.from_pem(keys["ES256"].to_pem(private=True)),
        typ="at+jwt",
    )
    assert run("token", "decode", thumb_token, "--key", str(pem)).exit_code == 0


def test_jwks_url_served_over_http(
    run: Run, make_token: MakeToken, keys: dict[str, Key], http_server: tuple[str, dict[str, bytes]]
) -> None:
    base, documents = http_server
    jwks = KeySet([keys["EdDSA"].public()]).to_jwks()
    documents["/.well-known/jwks.json"] = json.dumps(jwks).encode()
    url = f"{base}/.well-known/jwks.json"
    result = run(
        "token", "decode", make_token(), "--jwks", url, "--issuer", ISSUER, "--audience", AUDIENCE
    )
    assert result.exit_code == 0, result.output
    assert "VALID  signed by key eddsa-1 (EdDSA)" in result.stdout
    other = make_token("ES256")
    result = run("token", "decode", other, "--jwks", url)
    assert result.exit_code == 1
    assert "the key set has kids eddsa-1; the token names es256-1" in result.stdout


def test_jwks_url_may_be_the_discovery_document(
    run: Run, make_token: MakeToken, keys: dict[str, Key], http_server: tuple[str, dict[str, bytes]]
) -> None:
    base, documents = http_server
    documents["/jwks"] = json.dumps(KeySet([keys["EdDSA"].public()]).to_jwks()).encode()
    documents["/.well-known/openid-configuration"] = json.dumps(
        {"issuer": ISSUER, "jwks_uri": f"{base}/jwks"}
    ).encode()
    result = run(
        "token", "decode", make_token(), "--jwks", f"{base}/.well-known/openid-configuration"
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing", "HTTP 404"),
        ("/garbage", "did not answer with JSON"),
        ("/empty", "holds no usable signing key"),
    ],
    ids=["404", "not-json", "no-keys"],
)
def test_bad_jwks_urls_are_usage_errors(
    run: Run,
    make_token: MakeToken,
    http_server: tuple[str, dict[str, bytes]],
    path: str,
    message: str,
) -> None:
    base, documents = http_server
    documents["/garbage"] = b"<html>"
    documents["/empty"] = b'{"keys": []}'
    result = run("token", "decode", make_token(), "--jwks", base + path)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unreachable_jwks_url_is_a_usage_error(run: Run, make_token: MakeToken) -> None:
    import socket

    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(
        "token", "decode", make_token(), "--jwks", f"http://127.0.0.1:{port}/jwks", "--timeout", "2"
    )
    assert result.exit_code == 2
    assert "authmesh: error: cannot fetch" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--key", "/nonexistent/key.json"], "cannot read /nonexistent/key.json"),
        (["--jwks", "/nonexistent/jwks.json"], "cannot read /nonexistent/jwks.json"),
        (["--key", "{garbage}"], "cannot read"),
    ],
    ids=["missing-key", "missing-jwks", "missing-odd-name"],
)
def test_unreadable_key_files_are_usage_errors(
    run: Run, make_token: MakeToken, args: list[str], message: str
) -> None:
    result = run("token", "decode", make_token(), *args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_unusable_key_file_is_a_usage_error(
    run: Run, make_token: MakeToken, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("this is no key")
    result = run("token", "decode", make_token(), "--key", str(junk))
    assert result.exit_code == 2
    assert "authmesh: error:" in result.stderr and "junk.pem" in result.stderr


def test_hs256_key_file(
    run: Run, make_token: MakeToken, keys: dict[str, Key], jwk_file: WriteDoc
) -> None:
    secret = jwk_file(keys["HS256"].to_jwk(private=True))
    assert run("token", "decode", make_token("HS256"), "--key", str(secret)).exit_code == 0
