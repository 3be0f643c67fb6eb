"""Rows the storage tests put in place: an authorization code with plain defaults."""

from __future__ import annotations

from typing import Any

from authmesh.store import codes as code_store

__all__ = ["add_test_code"]


async def add_test_code(
    statements: Any,
    *,
    code_hash: str,
    user_id: str,
    now: float,
    client_id: str = "spa",
    browser_session_id: str = "b",
    redirect_uri: str = "https://spa.example/cb",
) -> None:
    """A code for ``scope=openid`` and audience ``orders``, valid for 60 s from ``now``."""
    await code_store.add_code(
        statements,
        code_hash=code_hash,
        client_id=client_id,
        user_id=user_id,
        browser_session_id=browser_session_id,
        redirect_uri=redirect_uri,
        scope="openid",
        audiences=["orders"],
        nonce=None,
        code_challenge="c",
        now=now,
        expires_at=now + 60,
    )
