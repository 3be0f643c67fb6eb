"""docs/deploying.md shows the HAProxy configuration the scale test runs, word for word."""

from __future__ import annotations

import datetime
import re
import subprocess
from pathlib import Path

import pytest
from bench.scale.haproxy import haproxy_path, render_config

DOC = Path(__file__).resolve().parents[2] / "docs" / "deploying.md"


def test_the_documented_haproxy_configuration_is_the_one_the_scale_test_runs() -> None:
    blocks = re.findall(r"```haproxy\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1
    expected = render_config(
        bind="*:443",
        servers=[("r1", "10.0.0.11:8000"), ("r2", "10.0.0.12:8000"), ("r3", "10.0.0.13:8000")],
        health_path="/readyz",
        tls_pem="/etc/haproxy/certs/auth.example.com.pem",
    )
    assert blocks[0] == expected


def test_haproxy_accepts_the_configuration_with_tls(tmp_path: Path) -> None:
    binary = haproxy_path()
    if binary is None:
        pytest.skip("haproxy is not installed (apt-get install haproxy; .ci/run installs it)")
    pem = tmp_path / "auth.pem"
    pem.write_bytes(_self_signed_pem())
    config = tmp_path / "haproxy.cfg"
    config.write_text(
        render_config(
            bind="127.0.0.1:8443",  # only checked (-c), never bound
            servers=[("r1", "127.0.0.1:1"), ("r2", "127.0.0.1:2")],
            tls_pem=str(pem),
        )
    )
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, check=False)
    assert check.returncode == 0, check.stderr.decode()


def _self_signed_pem() -> bytes:
    """A certificate and its key in one PEM file, as HAProxy's ``crt`` takes them."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "auth.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM) + key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
