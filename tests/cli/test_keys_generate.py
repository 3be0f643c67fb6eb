"""``authmesh keys generate``: private key files (0600), public JWKs, never a secret shown."""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import Result

from authmesh.jose import Key, sign_jwt

Run = Callable[..., Result]
ASYMMETRIC = ("EdDSA", "ES256", "RS256")
PRIVATE_MEMBERS = {"d", "p", "q", "dp", "dq", "qi", "oth", "k"}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("fmt", ["jwk", "pem"])
@pytest.mark.parametrize("alg", ASYMMETRIC)
def test_asymmetric_keys(run: Run, tmp_path: Path, alg: str, fmt: str) -> None:
    out = tmp_path / f"{alg}.{fmt}"
    result = run("keys", "generate", "--alg", alg, "--out", str(out), "--format", fmt)
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    public = json.loads(result.stdout)
    assert public["alg"] == alg and public["use"] == "sig"
    assert PRIVATE_MEMBERS.isdisjoint(public)
    key = Key.load(out)
    assert key.is_private and key.alg == alg
    assert key.kid == public["kid"]  # a PEM's kid is its thumbprint, as printed
    assert Key.from_jwk(public).verify(b"data", key.sign(b"data"))
    assert f"wrote the private key {key.kid} ({alg}) to {out} (mode 0600)" in result.stderr
    if fmt == "pem":
        assert out.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


def test_hs256_prints_only_the_kid(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "hs.json"
    result = run("keys", "generate", "--alg", "HS256", "--out", str(out), "--kid", "shared-1")
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    secret = json.loads(out.read_text())["k"]
    assert result.stdout == "shared-1\n"
    assert secret not in result.output
    assert "shared secret" in result.stderr and "out of band" in result.stderr
    assert Key.load(out).alg == "HS256"


@pytest.mark.parametrize("alg", [*ASYMMETRIC, "HS256"])
def test_a_generated_key_file_verifies_a_token(run: Run, tmp_path: Path, alg: str) -> None:
    out = tmp_path / "key.json"
    assert run("keys", "generate", "--alg", alg, "--out", str(out)).exit_code == 0
    claims = {"sub": "alice", "exp": int(time.time()) + 60}
    token = sign_jwt(claims, Key.load(out), typ="at+jwt")
    result = run("token", "decode", token, "--key", str(out))
    assert result.exit_code == 0, result.output
    assert f"VALID  signed by key {Key.load(out).kid} ({alg})" in result.stdout
    other = tmp_path / "other.json"
    assert run("keys", "generate", "--alg", alg, "--out", str(other), "--kid", "x").exit_code == 0
    assert run("token", "decode", token, "--key", str(other)).exit_code == 1


def test_kid_is_used(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    result = run("keys", "generate", "--out", str(out), "--kid", "2026-11-a")
    assert json.loads(result.stdout)["kid"] == "2026-11-a"
    assert Key.load(out).kid == "2026-11-a"


def test_alg_is_case_insensitive_and_defaults_to_eddsa(run: Run, tmp_path: Path) -> None:
    default = run("keys", "generate", "--out", str(tmp_path / "a.json"))
    assert json.loads(default.stdout)["alg"] == "EdDSA"
    lower = run("keys", "generate", "--alg", "es256", "--out", str(tmp_path / "b.json"))
    assert json.loads(lower.stdout)["alg"] == "ES256"


def test_refuses_to_overwrite_without_force(run: Run, tmp_path: Path) -> None:
    out = tmp_path / "k.json"
    out.write_text("precious")
    out.chmod(0o644)
    result = run("keys", "generate", "--out", str(out))
    assert result.exit_code == 2
    assert f"authmesh: error: {out} exists; use --force to replace it" in result.stderr
    assert out.read_text() == "precious"
    forced = run("keys", "generate", "--out", str(out), "--force")
    assert forced.exit_code == 0
    assert Key.load(out).is_private
    assert mode(out) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["k.json"]  # no temporary file left


def test_never_follows_a_symlink(run: Run, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    link = tmp_path / "k.json"
    link.symlink_to(target)
    assert run("keys", "generate", "--out", str(link)).exit_code == 2
    assert run("keys", "generate", "--out", str(link), "--force").exit_code == 0
    assert target.read_text() == "keep"
    assert not link.is_symlink() and mode(link) == 0o600


def test_unwritable_place_is_a_usage_error(run: Run, tmp_path: Path) -> None:
    result = run("keys", "generate", "--out", str(tmp_path / "no" / "such" / "dir.json"))
    assert result.exit_code == 2
    assert "authmesh: error: cannot write" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("fmt", ["jwk", "pem"])
def test_print_private_without_out(run: Run, fmt: str) -> None:
    result = run("keys", "generate", "--alg", "ES256", "--print-private", "--format", fmt)
    assert result.exit_code == 0, result.output
    key = Key.from_jwk(json.loads(result.stdout)) if fmt == "jwk" else Key.from_pem(result.stdout)
    assert key.is_private and key.alg == "ES256"
    assert "keep it secret" in result.stderr


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        ([], "--out"),
        (["--out", "k.json", "--print-private"], "--out"),
        (["--alg", "HS256", "--format", "pem", "--out", "k.pem"], "--format"),
        (["--kid", "a", "--format", "pem", "--out", "k.pem"], "--kid"),
        (["--alg", "HS512", "--out", "k.json"], "--alg"),
        (["--format", "der", "--out", "k.der"], "--format"),
    ],
    ids=["no-out", "out-and-print", "hs256-pem", "kid-pem", "unknown-alg", "unknown-format"],
)
def test_usage_errors_exit_2(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], hint: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = run("keys", "generate", *args)
    assert result.exit_code == 2, result.output
    assert hint in result.stderr
    assert list(tmp_path.iterdir()) == []
    assert result.stdout == ""
