"""``authmesh keys``: make signing keys here; list and rotate the auth server's.

``generate`` needs nothing but :mod:`authmesh.jose`; ``list`` and ``rotate`` work
on the server's database and are imported only when they run.
"""

from __future__ import annotations

import json
import os
import tempfile
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Annotated

import typer

from authmesh.cli.lazy import LazyGroup
from authmesh.errors import ConfigError
from authmesh.jose import Key

__all__ = ["KeyFormat", "SigningAlg", "generate", "keys_app", "write_private_file"]


class SigningAlg(StrEnum):
    """Algorithms a generated key can be bound to."""

    EdDSA = "EdDSA"
    ES256 = "ES256"
    RS256 = "RS256"
    HS256 = "HS256"


class KeyFormat(StrEnum):
    """File formats for a generated private key."""

    jwk = "jwk"
    pem = "pem"


class _KeysGroup(LazyGroup):
    lazy_commands = MappingProxyType(
        {
            "list": "authmesh.cli.keys_server:list_keys",
            "rotate": "authmesh.cli.keys_server:rotate_keys",
        }
    )


keys_app = typer.Typer(
    cls=_KeysGroup,
    help="Generate signing keys; list and rotate the auth server's.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@keys_app.callback()
def _keys() -> None:
    """Generate signing keys; list and rotate the auth server's."""


def write_private_file(path: Path, data: bytes, *, force: bool) -> None:
    """Write ``data`` readable by its owner only (mode 0600).

    Without ``force`` an existing file (or symlink) is never touched; with it, the
    file is replaced atomically, so a reader never sees half a key.

    Raises:
        ConfigError: the file exists (without ``force``) or cannot be written.
    """
    try:
        if not force:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(data)
            return
        if path.is_dir():
            raise ConfigError(f"{path} is a directory")
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as handle:
                os.fchmod(handle.fileno(), 0o600)
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except FileExistsError:
        raise ConfigError(f"{path} exists; use --force to replace it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None


def _private_bytes(key: Key, fmt: KeyFormat) -> bytes:
    if fmt is KeyFormat.pem:
        return key.to_pem(private=True)
    return (json.dumps(key.to_jwk(private=True), indent=2) + "\n").encode()


@keys_app.command("generate")
def generate(
    alg: Annotated[
        SigningAlg, typer.Option(case_sensitive=False, help="The key's one algorithm.")
    ] = SigningAlg.EdDSA,
    out: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Write the private key here (mode 0600).")
    ] = None,
    kid: Annotated[
        str | None, typer.Option(help="Key id (default: the RFC 7638 thumbprint).")
    ] = None,
    fmt: Annotated[
        KeyFormat, typer.Option("--format", case_sensitive=False, help="Private key file format.")
    ] = KeyFormat.jwk,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing file.")] = False,
    print_private: Annotated[
        bool,
        typer.Option("--print-private", help="No --out: print the private key on stdout."),
    ] = False,
) -> None:
    """Make a private key (or HS256 secret); print its public JWK, never a secret."""
    if out is not None and print_private:
        raise typer.BadParameter(
            "give either --out or --print-private, not both", param_hint="--out"
        )
    if out is None and not print_private:
        raise typer.BadParameter(
            "give --out FILE for the private key (or --print-private to print it on stdout)",
            param_hint="--out",
        )
    if fmt is KeyFormat.pem and alg is SigningAlg.HS256:
        raise typer.BadParameter("an HS256 secret has no PEM form: use jwk", param_hint="--format")
    if fmt is KeyFormat.pem and kid is not None:
        raise typer.BadParameter(
            "a PEM file cannot carry a kid (its readers use the RFC 7638 thumbprint): "
            "use --format jwk",
            param_hint="--kid",
        )
    key = Key.generate(alg.value, kid=kid)
    private = _private_bytes(key, fmt)
    if out is None:
        typer.echo(private.decode(), nl=False)
        typer.echo(f"printed the private key {key.kid} ({key.alg}): keep it secret", err=True)
        return
    write_private_file(out, private, force=force)
    typer.echo(f"wrote the private key {key.kid} ({key.alg}) to {out} (mode 0600)", err=True)
    if key.is_symmetric:
        typer.echo(key.kid)
        typer.echo(
            "warning: HS256 is a shared secret: every verifier can also sign. Share the file "
            "out of band (never by JWKS) and only inside one trust domain.",
            err=True,
        )
        return
    typer.echo(json.dumps(key.to_jwk(private=False), indent=2))
