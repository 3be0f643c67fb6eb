"""End-to-end: the demo as ``make run`` starts it, driven over HTTP and by the README.

One demo runs for the module (a temporary folder, free ports, fast hashing);
the last tests stop it with Ctrl-C and start it again on the same folder.
"""

from __future__ import annotations

import re
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from authmesh.demo.banner import WALKTHROUGH
from support.demo_process import DemoProcess, console_script

README = Path(__file__).resolve().parents[2] / "README.md"
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoProcess]:
    process = DemoProcess.in_folder(tmp_path_factory.mktemp("demo"))
    process.start()
    try:
        yield process
    finally:
        if process.proc is not None and process.proc.poll() is None:
            process.stop()


def _login(facts: dict[str, str], who: str, password: str | None = None) -> dict[str, Any]:
    prefix = "ADMIN" if who == "admin" else "USER"
    response = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={
            "grant_type": "password",
            "client_id": facts["DEMO_CLIENT_ID"],
            "username": facts[f"{prefix}_USERNAME"],
            "password": password or facts[f"{prefix}_PASSWORD"],
        },
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _graphql(facts: dict[str, str], token: str, query: str) -> httpx.Response:
    return httpx.post(
        f"{facts['CATALOG_URL']}/graphql", json={"query": query}, headers=_bearer(token)
    )


def readme_walkthrough() -> str:
    """The ``bash`` blocks of the README's walkthrough section, joined as one script."""
    text = README.read_text()
    start = text.index("### Walkthrough")
    end = text.index("\n## ", start)
    blocks = re.findall(r"```bash\n(.*?)\n```", text[start:end], flags=re.S)
    return "\n\n".join(blocks) + "\n"


# -- the banner and demo.env -----------------------------------------------------------


def test_banner_says_where_to_go_and_prints_the_passwords_once(demo: DemoProcess) -> None:
    out = demo.log.read_text()
    facts = demo.facts()
    auth, orders, catalog, webapp = demo.ports
    shown = out[out.index("authmesh demo is running") :]
    assert shown.index(f"http://localhost:{webapp}") < shown.index(f"http://localhost:{auth}")
    assert f"http://localhost:{auth}" in out
    console = shown.index(f"http://localhost:{auth}/admin")
    assert shown.index(f"http://localhost:{webapp}") < shown.index(
        f"http://localhost:{auth}/account"
    )
    assert shown.index(f"http://localhost:{auth}/account") < console
    assert f"http://localhost:{orders}/orders" in out
    assert f"http://localhost:{catalog}/graphql" in out
    assert f"admin  admin / {facts['ADMIN_PASSWORD']}" in out
    assert f"user   alice / {facts['USER_PASSWORD']}" in out
    assert WALKTHROUGH in out


def test_demo_env_holds_the_facts_for_scripts(demo: DemoProcess) -> None:
    facts = demo.facts()
    auth, orders, catalog, webapp = demo.ports
    assert facts["AUTHMESH_ISSUER"] == f"http://localhost:{auth}"
    assert facts["WEBAPP_URL"] == f"http://localhost:{webapp}"
    assert facts["ORDERS_URL"] == f"http://localhost:{orders}"
    assert facts["CATALOG_URL"] == f"http://localhost:{catalog}"
    for key in (
        "ADMIN_PASSWORD",
        "USER_PASSWORD",
        "ORDERS_CLIENT_SECRET",
        "CATALOG_CLIENT_SECRET",
        "WEBAPP_CLIENT_SECRET",
    ):
        assert len(facts[key]) >= 12
    assert (demo.folder / "data" / "demo.env").stat().st_mode & 0o077 == 0
    discovery = httpx.get(f"{facts['AUTHMESH_ISSUER']}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == facts["AUTHMESH_ISSUER"]
    assert _webapp_client(facts)["redirect_uris"] == [f"http://localhost:{webapp}/callback"]


def _webapp_client(facts: dict[str, str]) -> dict[str, Any]:
    admin = _login(facts, "admin")["access_token"]
    response = httpx.get(f"{facts['AUTHMESH_ISSUER']}/admin/clients", headers=_bearer(admin))
    assert response.status_code == 200, response.text
    (client,) = [c for c in response.json()["clients"] if c["client_id"] == "demo-webapp"]
    return dict(client)


# -- the README walkthrough, verbatim ---------------------------------------------------


def test_readme_walkthrough_is_the_printed_one() -> None:
    assert readme_walkthrough() == WALKTHROUGH


def _expect_in_order(output: str, needles: list[str]) -> None:
    at = 0
    for needle in needles:
        found = output.find(needle, at)
        assert found >= 0, f"{needle!r} not found after offset {at} in:\n{output}"
        at = found + len(needle)


def test_readme_walkthrough_runs_verbatim(demo: DemoProcess) -> None:
    result = subprocess.run(
        ["bash", "-c", readme_walkthrough()],
        cwd=demo.folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stdout.splitlines()
    codes = [line for line in lines if re.fullmatch(r"\d{3}", line)]
    # refresh -> 200; blocked: orders 401, catalog 401; password change 204, old
    # token 401; new password works, and the old one is set back: 204.
    assert codes == ["200", "401", "401", "204", "401", "204"], result.stdout
    _expect_in_order(
        result.stdout,
        [
            "catalog:read catalog:write orders:read orders:write",
            '"priced_by":"orders-svc"',
            '"product_name":"Teapot"',
            '{"data":{"products":[{"id":"p1"',
            '"code":"FORBIDDEN"',
            "VALID",
            '"blocked":true',
            '"error": "invalid_token"',
            '"blocked":false',
        ],
    )
    assert '"addProduct"' not in result.stdout.split('"code":"FORBIDDEN"')[0].split("errors")[0]
    # The walkthrough leaves alice as it found her: her password works again.
    _login(demo.facts(), "alice")
    # Denials are answers, not server errors: nothing in the demo's terminal shouts.
    assert "Traceback" not in demo.log.read_text()


# -- the story, step by step over HTTP --------------------------------------------------


def test_block_takes_effect_within_a_second_in_both_services(demo: DemoProcess) -> None:
    facts = demo.facts()
    token = _login(facts, "alice")["access_token"]
    admin = _login(facts, "admin")["access_token"]
    orders_url = f"{facts['ORDERS_URL']}/orders"
    assert httpx.get(orders_url, headers=_bearer(token)).status_code == 200
    assert _graphql(facts, token, "{ products { id } }").status_code == 200
    blocked = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/admin/users/alice/block", headers=_bearer(admin)
    )
    assert blocked.status_code == 200, blocked.text
    since = time.monotonic()
    pending = {"orders", "catalog"}
    latency: dict[str, float] = {}
    try:
        while pending and time.monotonic() - since < 1.0:
            if (
                "orders" in pending
                and httpx.get(orders_url, headers=_bearer(token)).status_code == 401
            ):
                latency["orders"] = time.monotonic() - since
                pending.discard("orders")
            if "catalog" in pending:
                response = _graphql(facts, token, "{ products { id } }")
                if response.status_code == 401:
                    assert 'error="invalid_token"' in response.headers["www-authenticate"]
                    latency["catalog"] = time.monotonic() - since
                    pending.discard("catalog")
        assert not pending, f"still accepted after 1 s by {pending}"
        print(f"block -> rejected: {latency}")
        # A blocked user cannot log in again either, with the same answer as a wrong password.
        login = httpx.post(
            f"{facts['AUTHMESH_ISSUER']}/oauth/token",
            data={
                "grant_type": "password",
                "client_id": facts["DEMO_CLIENT_ID"],
                "username": "alice",
                "password": facts["USER_PASSWORD"],
            },
        )
        assert login.status_code == 400 and login.json()["error"] == "invalid_grant"
    finally:
        httpx.post(f"{facts['AUTHMESH_ISSUER']}/admin/users/alice/unblock", headers=_bearer(admin))
    assert httpx.get(orders_url, headers=_bearer(token)).status_code == 401  # stays revoked
    fresh = _login(facts, "alice")["access_token"]
    assert httpx.get(orders_url, headers=_bearer(fresh)).status_code == 200


def test_graphql_mutation_is_denied_to_the_user_and_allowed_to_the_admin(demo: DemoProcess) -> None:
    facts = demo.facts()
    mutation = 'mutation { addProduct(name: "Desk lamp", price: 30.5) { id name price } }'
    denied = _graphql(facts, _login(facts, "alice")["access_token"], mutation)
    assert denied.status_code == 200
    body = denied.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    allowed = _graphql(facts, _login(facts, "admin")["access_token"], mutation)
    product = allowed.json()["data"]["addProduct"]
    assert product["name"] == "Desk lamp" and product["price"] == 30.5
    products = _graphql(facts, _login(facts, "alice")["access_token"], "{ products { name } }")
    assert {"name": "Desk lamp"} in products.json()["data"]["products"]


def test_graphql_without_token_or_with_a_bad_one(demo: DemoProcess) -> None:
    facts = demo.facts()
    anonymous = httpx.post(f"{facts['CATALOG_URL']}/graphql", json={"query": "{ products { id } }"})
    assert anonymous.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    forged = _graphql(facts, "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.", "{ products { id } }")
    assert forged.status_code == 401
    assert forged.headers["www-authenticate"].startswith("Bearer ")


def test_orders_rest_rules(demo: DemoProcess) -> None:
    facts = demo.facts()
    url = facts["ORDERS_URL"]
    alice = _login(facts, "alice")["access_token"]
    admin = _login(facts, "admin")["access_token"]
    assert httpx.get(f"{url}/orders").status_code == 401
    assert httpx.get(f"{url}/orders").headers["www-authenticate"].startswith("Bearer")
    forbidden = httpx.get(f"{url}/admin/orders", headers=_bearer(alice))
    assert forbidden.status_code == 403
    assert 'error="insufficient_scope"' in forbidden.headers["www-authenticate"]
    created = httpx.post(
        f"{url}/orders", json={"product_id": "p2", "quantity": 3}, headers=_bearer(admin)
    )
    assert created.status_code == 201, created.text
    assert created.json()["total"] == 25.5
    unknown = httpx.post(
        f"{url}/orders", json={"product_id": "p999", "quantity": 1}, headers=_bearer(alice)
    )
    assert unknown.status_code == 404
    mine = httpx.get(f"{url}/orders", headers=_bearer(alice)).json()
    assert all(order["username"] == "alice" for order in mine)
    every = httpx.get(f"{url}/admin/orders", headers=_bearer(admin)).json()
    assert {o["username"] for o in every} >= {"admin"}
    # A scope the token lacks: a token narrowed to orders:read cannot create orders.
    narrowed = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={
            "grant_type": "refresh_token",
            "client_id": facts["DEMO_CLIENT_ID"],
            "refresh_token": _login(facts, "alice")["refresh_token"],
            "scope": "orders:read",
        },
    ).json()["access_token"]
    refused = httpx.post(
        f"{url}/orders", json={"product_id": "p1", "quantity": 1}, headers=_bearer(narrowed)
    )
    assert refused.status_code == 403
    assert 'scope="orders:write"' in refused.headers["www-authenticate"]


def test_service_to_service_call_carries_a_client_credentials_token(demo: DemoProcess) -> None:
    facts = demo.facts()
    alice = _login(facts, "alice")["access_token"]
    order = httpx.post(
        f"{facts['ORDERS_URL']}/orders",
        json={"product_id": "p3", "quantity": 1},
        headers=_bearer(alice),
    ).json()
    # catalog saw orders' own identity, not alice's
    assert order["priced_by"] == facts["ORDERS_CLIENT_ID"]
    # and, called for alice with her token exchanged (RFC 8693), alice acting through orders
    assert order["seen_for"] == f"alice via {facts['ORDERS_CLIENT_ID']}"
    # The same grant orders uses, checked by hand: a token whose subject is the client.
    response = httpx.post(
        f"{facts['AUTHMESH_ISSUER']}/oauth/token",
        data={"grant_type": "client_credentials", "scope": "catalog:read", "audience": "catalog"},
        auth=(facts["ORDERS_CLIENT_ID"], facts["ORDERS_CLIENT_SECRET"]),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert "refresh_token" not in body
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert claims["sub"] == claims["client_id"] == facts["ORDERS_CLIENT_ID"]
    assert "sid" not in claims and claims["aud"] in ("catalog", ["catalog"])
    viewer = _graphql(facts, body["access_token"], "{ viewer { subject clientId roles } }")
    assert viewer.json()["data"]["viewer"] == {
        "subject": facts["ORDERS_CLIENT_ID"],
        "clientId": facts["ORDERS_CLIENT_ID"],
        "roles": ["service"],
    }
    # orders does not accept a catalog-only service token
    assert (
        httpx.get(
            f"{facts['ORDERS_URL']}/orders", headers=_bearer(body["access_token"])
        ).status_code
        == 401
    )


def test_tokens_verify_with_pyjwt_against_the_published_jwks(demo: DemoProcess) -> None:
    facts = demo.facts()
    issuer = facts["AUTHMESH_ISSUER"]
    token = _login(facts, "alice")["access_token"]
    client = jwt.PyJWKClient(f"{issuer}/.well-known/jwks.json")
    key = client.get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        key.key,
        algorithms=["EdDSA", "ES256", "RS256"],
        audience="orders",
        issuer=issuer,
        options={"require": ["exp", "iat", "sub", "jti"]},
    )
    assert claims["preferred_username"] == "alice"
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(
            token[:-4] + ("AAAA" if token[-4:] != "AAAA" else "BBBB"),
            key.key,
            algorithms=["EdDSA", "ES256", "RS256"],
            audience="orders",
            issuer=issuer,
        )


def test_health_of_each_service(demo: DemoProcess) -> None:
    facts = demo.facts()
    for url in (facts["ORDERS_URL"], facts["CATALOG_URL"]):
        health = httpx.get(f"{url}/healthz").json()
        assert health["status"] == "ok", health
        assert health["feed"]["connected"] is True


# -- ports, Ctrl-C, second start --------------------------------------------------------


def test_a_taken_port_gives_a_clear_message(tmp_path: Path) -> None:
    process = DemoProcess.in_folder(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        args = process.args()
        args[args.index("--orders-port") + 1] = str(taken)
        result = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    message = result.stdout + result.stderr
    assert f"port {taken} for the orders service is already in use" in message
    assert "--orders-port" in message
    assert "Traceback" not in message


def test_ctrl_c_stops_everything_and_a_second_start_reuses_the_folder(demo: DemoProcess) -> None:
    facts = demo.facts()
    alice = _login(facts, "alice")["access_token"]
    before = httpx.get(f"{facts['ORDERS_URL']}/orders", headers=_bearer(alice)).json()
    assert before, "earlier tests created orders"
    assert demo.stop() == 0
    assert "stopping the demo" in demo.log.read_text()
    for port in demo.ports:
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still answers"
    # Started again by IP address: the URLs, the issuer and the web app's registered
    # redirect URIs follow.
    demo.host = "127.0.0.1"
    out = demo.start()
    assert "Demo accounts: as on first start" in out
    assert facts["USER_PASSWORD"] not in out
    moved = demo.facts()
    assert moved["USER_PASSWORD"] == facts["USER_PASSWORD"]
    auth, orders, _, webapp = demo.ports
    assert moved["AUTHMESH_ISSUER"] == f"http://127.0.0.1:{auth}"
    assert moved["ORDERS_URL"] == f"http://127.0.0.1:{orders}"
    again = _login(moved, "alice")["access_token"]
    assert (
        jwt.decode(again, options={"verify_signature": False})["iss"] == f"http://127.0.0.1:{auth}"
    )
    after = httpx.get(f"{moved['ORDERS_URL']}/orders", headers=_bearer(again)).json()
    assert after == before
    assert _webapp_client(moved)["redirect_uris"] == [f"http://127.0.0.1:{webapp}/callback"]
    assert _webapp_client(moved)["post_logout_redirect_uris"] == [f"http://127.0.0.1:{webapp}/"]


def test_console_script_is_the_make_run_entry_point() -> None:
    makefile = (README.parent / "Makefile").read_text()
    assert re.search(r"^run:.*\n\t\$\(BIN\)/authmesh demo\s*$", makefile, flags=re.M)
    assert console_script().exists()
