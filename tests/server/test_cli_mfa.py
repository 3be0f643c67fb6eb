"""``authmesh users mfa`` and ``users mfa-reset``: an operator sees a user's second factors
and removes them for a lost device, through the same service functions as the admin API."""

from __future__ import annotations

from collections.abc import Callable

from authmesh.server import audit
from authmesh.server.audit import AuditQuery
from authmesh.testing.databases import DbTarget
from support.cli import cli, cli_env
from support.harness import Api, claims_of
from support.mfa import MfaBrowser, ShiftedClock, code_at
from support.oidc_flow import redirect_query, register_browser_clients


def test_an_operator_lists_a_users_factors_then_resets_them(
    start_server: Callable[..., Api], db: DbTarget
) -> None:
    clock = ShiftedClock()
    api = start_server(clock=clock)
    register_browser_clients(api)
    name, password = api.new_user()
    env = cli_env(db)
    none = cli(env, "users", "mfa", name)
    assert none.stdout.strip() == f"{name} has no second factor: signs in with a password alone"

    setup = MfaBrowser(api)
    signed_in = MfaBrowser(api)
    try:
        assert setup.account_sign_in(name, password).status_code == 303
        secret, _ = setup.enrol_totp(clock)
        clock.advance(30)
        second = signed_in.submit_login(signed_in.authorize(), name, password)
        done = signed_in.submit_code(second, code_at(secret, clock()))
        tokens = signed_in.exchange(redirect_query(done)["code"]).json()
        listed = cli(env, "users", "mfa", name)
        (row,) = [line for line in listed.stdout.splitlines() if " totp " in line]
        assert "phone" in row and "never" not in row  # named at enrolment, used just now
        assert "10 unused recovery code(s) left" in listed.stdout
        assert secret not in listed.stdout

        cursor = api.latest_cursor()
        reset = cli(env, "users", "mfa-reset", name)
        assert reset.stdout.startswith(f"1 factor(s) of {name} removed")
        # Every session ends through the revocation feed: this token, and the SSO.
        assert ("sub", claims_of(tokens["access_token"])["sub"]) in api.events(cursor)
        assert api.userinfo(tokens["access_token"]).status_code == 401
        assert signed_in.authorize().status_code == 200  # signs in again, password alone
    finally:
        setup.close()
        signed_in.close()
    again = cli(env, "users", "mfa", name)
    assert "has no second factor" in again.stdout
    (event,) = api.server.call(audit.query(api.core, AuditQuery(action="mfa_reset", subject=name)))
    # Three sessions ended: both browsers' sign-ins and the application's tokens.
    assert event.actor == "cli" and event.details == {"factors": 1, "sessions": 3}
    for command in ("mfa", "mfa-reset"):
        unknown = cli(env, "users", command, "nobody-here", code=1)
        assert unknown.stderr == "authmesh: error: no user 'nobody-here'\n"
