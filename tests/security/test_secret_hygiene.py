"""Secret hygiene: passwords, refresh tokens, client secrets and private keys never
appear in logs, error bodies, audit events or metrics.

Every logger of the process (the auth server and the service run in threads of
this one) is turned up to DEBUG, SQLAlchemy's and uvicorn's included, while a run
of logins, failed logins, refreshes, a refresh-token replay, client registrations,
client authentication failures, password changes, an admin password reset and a
key rotation goes by. Then every secret of that run is looked for everywhere.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from authmesh.cli.main import app as cli_app
from authmesh.jose import Key
from authmesh.server.master_key import MASTER_KEY_FILE
from authmesh.testing import wait_for
from support.harness import ADMIN, ALICE, PRIVATE_MEMBERS, basic
from support.security_stack import Stack, start_stack

MASTER_KEY = "master-" + uuid.uuid4().hex


@pytest.fixture(scope="module", params=["master-key", "no-master-key"])
def stack(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    master = {"master_key": MASTER_KEY} if request.param == "master-key" else {}
    with start_stack(tmp_path_factory.mktemp("hygiene"), refresh_reuse_grace=0, **master) as stack:
        yield stack


class Capture(logging.Handler):
    """Every record of every logger, formatted with its traceback if any."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.fixture
def capture() -> Iterator[Capture]:
    """Debug logging as an operator turns it on: the root logger at DEBUG
    (``logging.basicConfig(level=logging.DEBUG)``) and ``authmesh serve --log-level
    debug`` (uvicorn's loggers at DEBUG). Loggers without a level of their own follow."""
    handler = Capture()
    manager = logging.root.manager
    loggers = [
        logging.root,
        logging.getLogger("uvicorn.access"),
        logging.getLogger("uvicorn.error"),
    ]
    loggers += [lg for lg in manager.loggerDict.values() if isinstance(lg, logging.Logger)]
    saved = [(lg, lg.level, lg.disabled) for lg in loggers]
    for lg in loggers:
        if lg is logging.root or lg.name.startswith("uvicorn"):
            lg.setLevel(logging.DEBUG)
        lg.disabled = False
        if lg is logging.root or not lg.propagate:
            lg.addHandler(handler)
    try:
        yield handler
    finally:
        for lg, level, disabled in saved:
            lg.setLevel(level)
            lg.disabled = disabled
            lg.removeHandler(handler)


class Recorder:
    """Keeps every HTTP response of the run, and every secret the run handled."""

    def __init__(self) -> None:
        self.responses: list[httpx.Response] = []
        self.secrets: dict[str, str] = {}

    def hook(self, response: httpx.Response) -> None:
        response.read()
        self.responses.append(response)

    def secret(self, kind: str, value: str) -> str:
        assert len(value) >= 8, (kind, value)
        self.secrets[f"{kind} #{len(self.secrets)}"] = value
        return value

    def errors(self) -> str:
        return "\n".join(
            f"{r.status_code} {r.request.url} {dict(r.headers)} {r.text}"
            for r in self.responses
            if r.status_code >= 400
        )


def _key_material(key: Key) -> list[str]:
    """Private members of a key, and a stretch of its private PEM's base64."""
    jwk = key.to_jwk(private=True)
    found = [str(jwk[m]) for m in PRIVATE_MEMBERS if m in jwk]
    pem_lines = key.to_pem(private=True).decode().strip().splitlines()[1:-1]
    body = "".join(pem_lines)
    found.append(body[len(body) // 2 : len(body) // 2 + 40])
    return found


def _run(stack: Stack, rec: Recorder) -> None:
    api = stack.api
    http = api.http
    http.event_hooks["response"].append(rec.hook)
    stack.service.http.event_hooks["response"].append(rec.hook)
    for value in (ADMIN[1], ALICE[1], api.service_secret):
        rec.secret("seeded secret", value)
    admin = api.bearer(api.admin_token())

    # Users created over the API, logins good and bad, unknown users.
    name = f"hyg-{uuid.uuid4().hex[:8]}"
    password = rec.secret("password", f"Pw-{uuid.uuid4().hex}")
    assert http.post(
        "/admin/users", json={"username": name, "password": password}, headers=admin
    ).is_success
    tokens = api.login(name, password)
    rec.secret("refresh token", tokens["refresh_token"])
    rec.secret("access token signature", tokens["access_token"].rsplit(".", 1)[1])
    for _ in range(3):
        assert api.password_grant(name, rec.secret("wrong password", uuid.uuid4().hex)).is_error
    assert api.password_grant("no-such-user", rec.secret("password", uuid.uuid4().hex)).is_error
    # A weak password refused by the policy must not be echoed either.
    weak = rec.secret("weak password", "short-pw")
    assert http.post(
        "/admin/users", json={"username": f"{name}-w", "password": weak}, headers=admin
    ).is_error

    # Refresh, then a replay of the rotated token (theft detection).
    refreshed = api.refresh(tokens["refresh_token"]).json()
    rec.secret("refresh token", refreshed["refresh_token"])
    assert api.refresh(tokens["refresh_token"]).is_error
    assert api.refresh(rec.secret("forged refresh token", uuid.uuid4().hex)).is_error

    # Clients: registration, good and bad client authentication, deletion.
    made = http.post(
        "/admin/clients",
        json={"client_id": f"svc-{name}", "scopes": ["catalog:read"], "audiences": ["catalog"]},
        headers=admin,
    ).json()
    secret = rec.secret("client secret", made["client_secret"])
    good = api.token(
        {"grant_type": "client_credentials"},
        headers={"Authorization": basic(made["client_id"], secret)},
    )
    assert good.status_code == 200
    rec.secret("access token signature", good.json()["access_token"].rsplit(".", 1)[1])
    wrong = rec.secret("wrong client secret", f"guess-{uuid.uuid4().hex}")
    assert api.token(
        {"grant_type": "client_credentials", "client_id": made["client_id"], "client_secret": wrong}
    ).is_error
    assert http.post(
        "/oauth/introspect",
        data={"token": refreshed["access_token"]},
        headers={"Authorization": basic(made["client_id"], wrong)},
    ).is_error
    assert http.delete(f"/admin/clients/{made['client_id']}", headers=admin).is_success

    # Password change (right and wrong current password), admin reset.
    session = api.login(name, password)
    rec.secret("refresh token", session["refresh_token"])
    new_password = rec.secret("new password", f"New-{uuid.uuid4().hex}")
    bad = http.post(
        "/account/password",
        json={
            "current_password": rec.secret("wrong password", uuid.uuid4().hex),
            "new_password": new_password,
        },
        headers=api.bearer(session["access_token"]),
    )
    assert bad.status_code == 403
    changed = http.post(
        "/account/password",
        json={"current_password": password, "new_password": new_password},
        headers=api.bearer(session["access_token"]),
    )
    assert changed.status_code == 204, changed.text
    reset = rec.secret("reset password", f"Reset-{uuid.uuid4().hex}")
    assert http.post(
        f"/admin/users/{name}/password", json={"password": reset}, headers=admin
    ).is_success
    rec.secret("refresh token", api.login(name, reset)["refresh_token"])

    # Key rotation through the operator CLI (in this process, so its logs are captured).
    # Without AUTHMESH_MASTER_KEY, the key the server keeps in its data folder opens them.
    result = CliRunner().invoke(
        cli_app,
        ["keys", "rotate", "--database-url", stack.db_url, "--data-dir", str(stack.data_dir)],
        env={"AUTHMESH_MASTER_KEY": MASTER_KEY} if stack.api.core.settings.master_key else {},
    )
    assert result.exit_code == 0, result.output
    rec.secret("master key", MASTER_KEY)
    kept = stack.data_dir / MASTER_KEY_FILE
    if not stack.api.core.settings.master_key:
        rec.secret("master key kept in the data folder", kept.read_text().strip())
    rec.secret("refresh-token pepper", stack.api.core.pepper.decode())

    # The service saw tokens too, good and bad: once the feed has delivered the
    # revocations (reuse, password change), both are refused.
    for revoked in (refreshed["access_token"], session["access_token"]):
        wait_for(lambda token=revoked: stack.service.me(token).status_code == 401, timeout=5)


def _keys_of(stack: Stack) -> list[Key]:
    core = stack.api.core
    stack.api.server.call(core.keys.reload())
    return list(core.keys.published())


def test_no_secret_reaches_logs_errors_audit_or_metrics(stack: Stack, capture: Capture) -> None:
    rec = Recorder()
    _run(stack, rec)
    keys = _keys_of(stack)
    assert len(keys) >= 2, "the rotation published a second key"
    for key in keys:
        for material in _key_material(key):
            rec.secret("private key material", material)

    admin = stack.api.bearer(stack.api.admin_token())
    audit = stack.api.http.get("/admin/audit", params={"limit": 1000}, headers=admin)
    metrics = stack.api.http.get("/metrics")
    jwks = stack.api.http.get("/.well-known/jwks.json")
    channels = {
        "logs": "\n".join(capture.lines),
        "error responses": rec.errors(),
        "audit": audit.text,
        "metrics": metrics.text,
        "jwks": jwks.text,
    }
    # The run did produce material to search (else the test would prove nothing).
    assert len(capture.lines) > 50, len(capture.lines)
    assert rec.errors().count("\n") >= 8
    assert audit.json()["events"] and "key_rotate" in audit.text
    assert "token_requests" in metrics.text

    leaks = [
        f"{kind} in {channel}"
        for channel, text in channels.items()
        for kind, value in rec.secrets.items()
        if value in text or base64.b64encode(value.encode()).decode() in text
    ]
    assert leaks == [], leaks
