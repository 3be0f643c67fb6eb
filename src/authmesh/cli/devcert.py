"""``authmesh dev-cert``: a local CA and a server certificate for HTTPS in development."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["dev_cert", "make_dev_cert"]


def _write(path: Path, data: bytes, *, private: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def make_dev_cert(out_dir: Path, hosts: list[str], days: int = 30) -> dict[str, Path]:
    """Write ``ca.pem``, ``ca-key.pem``, ``server.pem`` and ``server-key.pem``; returns paths."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "authmesh development CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = {
        "ca": out_dir / "ca.pem",
        "ca_key": out_dir / "ca-key.pem",
        "cert": out_dir / "server.pem",
        "key": out_dir / "server-key.pem",
    }
    _write(paths["ca"], ca.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths["ca_key"], _pem_key(ca_key), private=True)
    _write(paths["cert"], cert.public_bytes(serialization.Encoding.PEM), private=False)
    _write(paths["key"], _pem_key(key), private=True)
    return paths


def dev_cert(
    out: Annotated[Path, typer.Option(help="Folder for the files")] = Path("data/tls"),
    host: Annotated[
        list[str] | None, typer.Option("--host", help="Name or IP the certificate covers")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=825, help="Validity in days")] = 30,
) -> None:
    """Make a development CA and a server certificate (for serve --tls-cert/--tls-key)."""
    hosts = host or ["localhost", "127.0.0.1", "::1"]
    paths = make_dev_cert(out, hosts, days)
    typer.echo(f"CA certificate:     {paths['ca']}  (give it to the SDK: ca_bundle=...)")
    typer.echo(f"server certificate: {paths['cert']}")
    typer.echo(f"server key:         {paths['key']}")
    typer.echo(
        f"start HTTPS: authmesh serve --tls-cert {paths['cert']} --tls-key {paths['key']} "
        "--issuer https://localhost:8443 --port 8443"
    )
