"""``authmesh token decode``: output, verdicts with hints, and exit codes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from typer.testing import Result

from authmesh.jose import Key, KeySet
from authmesh.jose.b64 import b64url_encode

ISSUER = "https://auth.example.com"  # what the conftest's claims fixture issues
AUDIENCE = "orders"
WriteDoc = Callable[..., Path]
MakeToken = Callable[..., str]
Run = Callable[..., Result]


@pytest.fixture
def public_jwks(keys: dict[str, Key], jwk_file: WriteDoc) -> Path:
    """A JWKS file with the public EdDSA and ES256 keys."""
    return jwk_file(KeySet([keys["EdDSA"].public(), keys["ES256"].public()]).to_jwks(), "jwks.json")


def verify_args(jwks: Path) -> list[str]:
    return ["--jwks", str(jwks), "--issuer", ISSUER, "--audience", AUDIENCE]


def test_without_keys_it_decodes_and_says_it_did_not_verify(
    run: Run, make_token: MakeToken
) -> None:
    now = int(time.time())
    token = make_token(exp=now + 290, iat=now - 2, roles=["admin"])
    result = run("token", "decode", token)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for text in ("Header", "alg", "EdDSA", "eddsa-1", "at+jwt", "Payload", "alice", '["admin"]'):
        assert text in out
    assert "expires in 4 min" in out
    # 2 s before the token was made; more if the machine stalled before decoding it.
    assert re.search(r"issued \d+ s ago", out), out
    assert " UTC" in out
    assert "Signature  64 bytes" in out
    assert "NOT VERIFIED" in out
    assert "VALID" not in out.replace("NOT VERIFIED", "")


@pytest.mark.parametrize("alg", ["EdDSA", "ES256", "RS256"])
def test_valid_token(
    run: Run, make_token: MakeToken, keys: dict[str, Key], jwk_file: WriteDoc, alg: str
) -> None:
    jwks = jwk_file(KeySet([keys[alg].public()]).to_jwks())
    result = run("token", "decode", make_token(alg), *verify_args(jwks))
    assert result.exit_code == 0, result.output
    assert f"VALID  signed by key {keys[alg].kid} ({alg})" in result.stdout
    assert "revocation not checked: give --introspect URL" in result.stdout
    assert "not checked" not in result.stdout.replace("revocation not checked", "")


def test_valid_but_unchecked_rules_are_named(
    run: Run, make_token: MakeToken, public_jwks: Path
) -> None:
    result = run("token", "decode", make_token(), "--jwks", str(public_jwks))
    assert result.exit_code == 0
    assert "not checked: iss (--issuer), aud (--audience)" in result.stdout


def test_expired_token_says_when(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    now = int(time.time())
    token = make_token(exp=now - 3 * 3600 - 100, iat=now - 4 * 3600)
    result = run("token", "decode", token, *verify_args(public_jwks))
    assert result.exit_code == 1
    out = result.stdout
    assert "INVALID: expired: the token has expired" in out
    assert "expired 3 h ago" in out
    assert "hint: it expired" in out
    assert "leeway 30 s" in out


def test_tampered_token_has_a_bad_signature(
    run: Run, make_token: MakeToken, public_jwks: Path
) -> None:
    header, _, signature = make_token().split(".")
    forged = json.dumps(
        {"iss": ISSUER, "sub": "mallory", "aud": AUDIENCE, "exp": int(time.time()) + 600}
    )
    token = ".".join([header, b64url_encode(forged.encode()).decode(), signature])
    result = run("token", "decode", token, *verify_args(public_jwks))
    assert result.exit_code == 1
    assert "INVALID: bad_signature: the token signature is invalid" in result.stdout
    assert "does not match key eddsa-1 (EdDSA)" in result.stdout
    assert "mallory" in result.stdout  # still shows what the token claims


def test_wrong_audience_shows_both(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    token = make_token(aud=["billing", "shipping"])
    result = run("token", "decode", token, *verify_args(public_jwks))
    assert result.exit_code == 1
    assert "INVALID: wrong_audience:" in result.stdout
    assert 'the token\'s aud is ["billing", "shipping"]; expected "orders"' in result.stdout


def test_wrong_issuer_shows_both(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    result = run(
        "token", "decode", make_token(iss="https://evil.example"), *verify_args(public_jwks)
    )
    assert result.exit_code == 1
    assert '"https://evil.example"; expected "https://auth.example.com"' in result.stdout


def test_unknown_kid_lists_the_known_ones(
    run: Run, make_token: MakeToken, public_jwks: Path
) -> None:
    result = run("token", "decode", make_token("RS256"), *verify_args(public_jwks))
    assert result.exit_code == 1
    assert "INVALID: unknown_kid:" in result.stdout
    assert "the key set has kids eddsa-1, es256-1; the token names rs256-1" in result.stdout


def test_wrong_type_suggests_the_option(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    token = make_token(typ="JWT")
    rejected = run("token", "decode", token, *verify_args(public_jwks))
    assert rejected.exit_code == 1
    assert "INVALID: wrong_type:" in rejected.stdout
    assert "--any-type" in rejected.stdout
    assert run("token", "decode", token, *verify_args(public_jwks), "--type", "JWT").exit_code == 0
    assert run("token", "decode", token, *verify_args(public_jwks), "--any-type").exit_code == 0


def test_leeway_is_applied(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    token = make_token(exp=int(time.time()) - 60)
    assert run("token", "decode", token, *verify_args(public_jwks)).exit_code == 1
    assert (
        run("token", "decode", token, *verify_args(public_jwks), "--leeway", "120").exit_code == 0
    )


def test_alg_none_is_rejected_with_a_reason(run: Run, public_jwks: Path) -> None:
    header = b64url_encode(b'{"alg":"none","typ":"at+jwt"}').decode()
    payload = b64url_encode(json.dumps({"sub": "x", "exp": int(time.time()) + 60}).encode())
    token = f"{header}.{payload.decode()}."
    decoded = run("token", "decode", token)
    assert decoded.exit_code == 0  # readable; the warning says what is wrong
    assert "alg is 'none'" in decoded.stdout
    verified = run("token", "decode", token, "--jwks", str(public_jwks))
    assert verified.exit_code == 1
    assert "INVALID: alg_not_allowed:" in verified.stdout


@pytest.mark.parametrize(
    "token",
    ["not-a-token", "a.b", "eyJ.eyJ.sig", "e30.e30.e30.e30.e30"],
    ids=["one-part", "two-parts", "bad-json", "five-parts"],
)
def test_malformed_tokens_exit_1(run: Run, public_jwks: Path, token: str) -> None:
    decoded = run("token", "decode", token)
    assert decoded.exit_code == 1
    assert "INVALID: malformed: the token cannot be decoded" in decoded.stdout
    verified = run("token", "decode", token, "--jwks", str(public_jwks))
    assert verified.exit_code == 1
    assert "INVALID: malformed:" in verified.stdout
    assert "Traceback" not in decoded.output + verified.output


def test_sensitive_claims_are_warned_about(run: Run, make_token: MakeToken) -> None:
    result = run("token", "decode", make_token(password="hunter2", email="a@example.com"))
    assert result.exit_code == 0
    assert "warning: claim 'password' looks like a secret" in result.stdout
    assert "warning: claim 'email' is personal data" in result.stdout


def test_terminal_escapes_in_claims_are_neutralised(run: Run, make_token: MakeToken) -> None:
    result = run(
        "token", "decode", make_token(sub="\x1b[2J\x1b]0;pwned\x07alice", note="[red]x[/]")
    )
    assert result.exit_code == 0
    assert "\x1b" not in result.stdout
    assert "\\x1b[2J" in result.stdout
    assert "[red]x[/]" in result.stdout  # no Rich markup is interpreted


def test_stdin_dash(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    result = run("token", "decode", "-", *verify_args(public_jwks), input=make_token() + "\n")
    assert result.exit_code == 0, result.output
    assert "VALID  signed by key eddsa-1" in result.stdout


def test_empty_stdin_is_a_usage_error(run: Run) -> None:
    result = run("token", "decode", "-", input="  \n")
    assert result.exit_code == 2
    assert "no token given on standard input" in result.stderr


def test_json_mode_valid(run: Run, make_token: MakeToken, public_jwks: Path) -> None:
    now = int(time.time())
    token = make_token(exp=now + 290, password="x")
    result = run("token", "decode", token, *verify_args(public_jwks), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["header"]["kid"] == "eddsa-1"
    assert doc["payload"]["sub"] == "alice"
    assert doc["signature_length"] == 64
    assert doc["problems"] == []
    assert doc["sensitive_claims"][0]["path"] == "password"
    assert doc["dates"]["exp"]["relative"] == "expires in 4 min"
    assert doc["verdict"] == {
        "status": "valid",
        "valid": True,
        "reason": None,
        "message": None,
        "hint": None,
        "kid": "eddsa-1",
        "alg": "EdDSA",
        "unchecked": [],
    }
    assert doc["revocation"] == {
        "checked": False,
        "active": None,
        "endpoint": None,
        "message": "revocation not checked",
    }


def test_json_mode_invalid_and_malformed(
    run: Run, make_token: MakeToken, public_jwks: Path
) -> None:
    expired = make_token(exp=int(time.time()) - 7200)
    doc = json.loads(run("token", "decode", expired, "--jwks", str(public_jwks), "--json").stdout)
    assert doc["verdict"]["status"] == "invalid"
    assert doc["verdict"]["reason"] == "expired"
    assert "expired 2 h ago" in doc["verdict"]["hint"]

    result = run("token", "decode", "e30.bm90IGpzb24.", "--json")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["verdict"]["status"] == "undecodable"
    assert doc["payload"] is None and doc["payload_text"] == "not json"
    assert {"not_json", "no_signature"} <= {p["code"] for p in doc["problems"]}


def test_json_mode_survives_nan_and_huge_numbers(run: Run) -> None:
    header = b64url_encode(b'{"alg":"EdDSA"}').decode()
    payload = b64url_encode(b'{"exp": NaN, "nbf": 1e400}').decode()
    result = run("token", "decode", f"{header}.{payload}.c2ln", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["payload"] == {"exp": "NaN", "nbf": "1e400"}


@pytest.mark.parametrize(
    "args",
    [
        ["--issuer", ISSUER],
        ["--audience", AUDIENCE],
        ["--jwks", "a.json", "--key", "b.json"],
        ["--type", "JWT", "--any-type", "--key", "k.json"],
        ["--leeway", "-1", "--key", "k.json"],
        ["--leeway", "301", "--key", "k.json"],
        ["--no-such-option"],
        ["--introspect", "http://127.0.0.1:9/introspect"],
        ["--introspect", "http://127.0.0.1:9/introspect", "--key", "k.json"],
    ],
    ids=[
        "issuer-without-keys",
        "audience-without-keys",
        "jwks-and-key",
        "type-and-any-type",
        "negative-leeway",
        "huge-leeway",
        "unknown-option",
        "introspect-without-keys",
        "introspect-without-credentials",
    ],
)
def test_option_mistakes_exit_2(run: Run, make_token: MakeToken, args: list[str]) -> None:
    result = run("token", "decode", make_token(), *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output


def test_the_installed_console_script(
    make_token: MakeToken, keys: dict[str, Key], jwk_file: WriteDoc, tmp_path: Path
) -> None:
    exe = Path(sys.executable).parent / "authmesh"
    key = jwk_file(keys["EdDSA"].public().to_jwk())
    env: Mapping[str, Any] = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    valid = subprocess.run(
        [str(exe), "token", "decode", make_token(), "--key", str(key), "--audience", AUDIENCE],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert valid.returncode == 0, valid.stderr
    assert "VALID  signed by key eddsa-1 (EdDSA)" in valid.stdout
    expired = subprocess.run(
        [str(exe), "token", "decode", "-", "--key", str(key), "--json"],
        input=make_token(exp=int(time.time()) - 100),
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert expired.returncode == 1
    assert json.loads(expired.stdout)["verdict"]["reason"] == "expired"
    missing = subprocess.run(
        [str(exe), "token", "decode", make_token(), "--key", "nope.json"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
        check=False,
    )
    assert missing.returncode == 2
    assert missing.stderr.startswith("authmesh: error: cannot read nope.json")


def test_empty_header_and_payload_are_shown_as_such(run: Run) -> None:
    result = run("token", "decode", "e30.e30.")
    assert result.exit_code == 0
    assert result.stdout.count("(empty)") == 2
    assert "the header has no 'alg' string" in result.stdout
    assert "the signature is empty" in result.stdout


def test_malformed_problems_are_listed_once(run: Run) -> None:
    result = run("token", "decode", "e30.bm90IGpzb24.c2ln")
    assert result.exit_code == 1
    assert result.stdout.count("the payload is not JSON") == 1
