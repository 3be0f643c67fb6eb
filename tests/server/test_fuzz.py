"""Fuzzing over HTTP: no request, however odd, gets a 500.

schemathesis generates requests from the server's own OpenAPI document (valid
and invalid ones); hypothesis throws arbitrary form bodies at ``/oauth/token``.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error

from support.harness import ADMIN, Api

# Bounded: 10 valid + 10 invalid examples per operation, a few hundred requests per backend.
EXAMPLES = 10
_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture
def api(shared: Api) -> Api:
    """The schemathesis run gets a server of its own (``fresh``); the rest share one."""
    return shared


class Credentials:
    """Valid credentials for each kind of endpoint, renewed when a case revokes them."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self._admin = ""

    def admin(self) -> dict[str, str]:
        if not self._admin or self.api.userinfo(self._admin).status_code != 200:
            # A case may have blocked, logged out or re-roled the admin: put it back.
            self.api.server.call(_restore_admin(self.api))
            self._admin = self.api.admin_token()
        return self.api.bearer(self._admin)

    def headers_for(self, path: str) -> dict[str, str]:
        if path.startswith("/admin/"):
            return self.admin()
        if path.startswith(("/account/", "/userinfo")):
            # A fresh user session each time: logout and password change end it.
            return self.api.bearer(self.api.login()["access_token"])
        if path.startswith("/revocations"):
            return {"Authorization": self.api.service_basic}
        return {}


async def _restore_admin(api: Api) -> None:
    from authmesh.server import accounts

    core = api.core
    try:
        await accounts.unblock_user(core, ADMIN[0])
    except Exception:  # deleted users cannot happen via the API; anything else: recreate
        await accounts.create_user(core, username=ADMIN[0], password=ADMIN[1], roles=["admin"])
        return
    await accounts.set_roles(core, ADMIN[0], ["admin", "user"])
    await accounts.set_password(core, ADMIN[0], ADMIN[1])


def _fuzz(
    api: Api,
    credentials: Credentials,
    operation: schemathesis.APIOperation,
    mode: schemathesis.GenerationMode,
) -> None:
    """Run one operation's generated cases against the live server."""

    @_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case) -> None:
        headers = {**(case.headers or {}), **credentials.headers_for(operation.path)}
        response = case.call(base_url=api.url, headers=headers, timeout=15)
        case.validate_response(response, checks=[not_a_server_error])

    try:
        run()
    except Unsatisfiable:
        # Nothing to make invalid: an operation without parameters or body.
        if mode is not schemathesis.GenerationMode.NEGATIVE:
            raise


@pytest.mark.slow
def test_openapi_operations_never_answer_500(fresh: Api) -> None:
    api = fresh
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", timeout=10)
    credentials = Credentials(api)
    tested: list[str] = []

    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/revocations/stream":
            continue  # an endless response; covered by test_feed.py
        tested.append(operation.label)
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            _fuzz(api, credentials, operation, mode)

    assert "POST /oauth/token" in tested
    assert "POST /admin/users" in tested
    assert len(tested) >= 20
    # The server is still healthy and usable after all that.
    assert api.http.get("/healthz").json()["status"] == "ok"
    assert api.password_grant().status_code in (200, 400)


FORM_NAMES = [
    "grant_type",
    "username",
    "password",
    "refresh_token",
    "scope",
    "audience",
    "resource",
    "client_id",
    "client_secret",
    "code",
]
_values = st.one_of(
    st.sampled_from(
        ["password", "refresh_token", "client_credentials", "web", "orders-svc", "alice", ""]
    ),
    st.text(max_size=40),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=200),
)
_forms = st.lists(
    st.tuples(st.one_of(st.sampled_from(FORM_NAMES), st.text(max_size=10)), _values),
    max_size=8,
)
_auth = st.one_of(
    st.none(),
    st.sampled_from(["Basic", "Basic Og==", "Bearer x", "Basic d2ViOg==", "basic %%"]),
    st.binary(min_size=1, max_size=40).map(lambda b: "Basic " + base64.b64encode(b).decode()),
)


@pytest.mark.slow
def test_token_endpoint_form_fuzz(api: Api) -> None:
    client = httpx.Client(base_url=api.url, timeout=15)

    @settings(
        max_examples=150,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(form=_forms, authorization=_auth, raw=st.booleans())
    def run(form: list[tuple[str, str]], authorization: str | None, raw: bool) -> None:
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if authorization is not None:
            headers["Authorization"] = authorization
        body: Any = urlencode(form)
        if raw:  # hand-made, possibly malformed percent-encoding
            body = "&".join(f"{k}={v}" for k, v in form).encode("utf-8", "surrogatepass")
        response = client.post("/oauth/token", content=body, headers=headers)

        assert response.status_code in (200, 400, 401, 429), (form, response.text)
        assert response.headers["cache-control"] == "no-store"
        if response.status_code != 200:
            assert set(response.json()) == {"error", "error_description"}

    try:
        run()
    finally:
        client.close()


@pytest.mark.parametrize(
    ("method", "path", "kwargs"),
    [
        ("GET", "/admin/audit", {"params": {"action": "\x00"}}),
        ("GET", "/admin/audit", {"params": {"subject": "a\x00b"}}),
        ("GET", "/admin/users/al%00ice", {}),
        ("POST", "/admin/users/al%00ice/block", {}),
        ("DELETE", "/admin/clients/web%00", {}),
        ("POST", "/admin/clients", {"json": {"client_id": "nul-svc", "name": "a\x00b"}}),
    ],
    ids=["audit-action", "audit-subject", "user-path", "block-path", "client-path", "client-name"],
)
def test_nul_characters_are_a_400_not_a_500(
    api: Api, method: str, path: str, kwargs: dict[str, Any]
) -> None:
    # PostgreSQL text cannot hold NUL; SQLite can. Both must answer alike.
    response = api.admin(method, path, **kwargs)

    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"
