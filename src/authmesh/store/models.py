"""The tables of the auth server (SQLAlchemy 2 declarative models).

Times are stored as UTC epoch seconds (float): they are compared with JWT
NumericDates everywhere, and the same column type behaves alike on SQLite and
PostgreSQL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

__all__ = [
    "AuditRow",
    "AuthorizationCodeRow",
    "Base",
    "ClientRow",
    "ConsentRow",
    "FactorRow",
    "MetaRow",
    "MfaChallengeRow",
    "RecoveryCodeRow",
    "RefreshTokenRow",
    "RevocationRow",
    "SessionRow",
    "SigningKeyRow",
    "SsfOutboxRow",
    "SsfStreamRow",
    "UserRoleRow",
    "UserRow",
]

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL wants BIGINT.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class Base(DeclarativeBase):
    """Declarative base of every authmesh table."""

    type_annotation_map: ClassVar[dict[Any, Any]] = {dict[str, Any]: JSON, list[str]: JSON}

    if TYPE_CHECKING:
        # DeclarativeBase types this as any FromClause (a class may map a join or a
        # subquery); every authmesh row maps one Table, and insert/update/delete want one.
        __table__: ClassVar[Table]


class UserRow(Base):
    """A person who logs in with a username and password."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    username: Mapped[str] = mapped_column(String(150))
    # Lower-cased for lookups and uniqueness: "Alice" and "alice" are one account.
    username_key: Mapped[str] = mapped_column(String(150), unique=True)
    password_hash: Mapped[str] = mapped_column(Text)
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    password_changed_at: Mapped[float] = mapped_column(Float)
    email: Mapped[str | None] = mapped_column(String(254), nullable=True, default=None)
    # Set by an admin's password reset: the next browser sign-in asks for a new one.
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=False)


class UserRoleRow(Base):
    """One role granted to one user."""

    __tablename__ = "user_roles"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(100), primary_key=True)


class ClientRow(Base):
    """A registered OAuth client: a first-party app (public) or a service (confidential)."""

    __tablename__ = "clients"

    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    # SHA-256 of a generated high-entropy secret; NULL for a public client.
    secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    grant_types: Mapped[list[str]] = mapped_column(JSON)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    audiences: Mapped[list[str]] = mapped_column(JSON)
    roles: Mapped[list[str]] = mapped_column(JSON)
    created_at: Mapped[float] = mapped_column(Float)
    # Where the authorization endpoint may send a code, and logout may return to.
    redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    post_logout_redirect_uris: Mapped[list[str]] = mapped_column(JSON, default=list)
    # A first-party app needs no consent screen; a third-party one asks the user.
    first_party: Mapped[bool] = mapped_column(Boolean, default=True)
    # The audiences of this client's own API: a user's token for one of them is what
    # the client may trade for a token to another service (token exchange, RFC 8693).
    serves: Mapped[list[str]] = mapped_column(JSON, default=list)
    # Every access token of this client must be DPoP-bound (RFC 9449 §5.2 metadata).
    dpop_bound_access_tokens: Mapped[bool] = mapped_column(Boolean, default=False)


class SessionRow(Base):
    """One login: refresh tokens and access tokens (``sid``) belong to it."""

    __tablename__ = "sessions"
    __table_args__ = (
        Index("ix_sessions_user_open", "user_id", "ended_at"),
        Index("ix_sessions_browser_secret", "browser_secret_hash", unique=True),
        Index("ix_sessions_console_secret", "console_secret_hash", unique=True),
        # Retention finds ended and expired sessions by these.
        Index("ix_sessions_ended", "ended_at"),
        Index("ix_sessions_expires", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(String(100))
    scope: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[list[str]] = mapped_column(JSON)
    auth_time: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float] = mapped_column(Float)
    # The absolute end: no refresh extends a session past it.
    expires_at: Mapped[float] = mapped_column(Float)
    ended_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(50), nullable=True)
    # The DPoP key a public client's refresh tokens are bound to (RFC 9449 §5).
    dpop_jkt: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # A browser sign-in (single sign-on) holds the hash of its cookie's secret; the
    # sessions its authorization codes open name it as their parent and end with it.
    parent_id: Mapped[str | None] = mapped_column(String(36), nullable=True, index=True)
    browser_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    amr: Mapped[list[str] | None] = mapped_column(JSON, nullable=True)
    # The web consoles' own sign-in (the server as its own client) holds the hash of
    # its cookie's secret; it is a session like any other and ends with them.
    console_secret_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # Where the sign-in came from, for the account page's list of sessions.
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(300), nullable=True)


class RefreshTokenRow(Base):
    """A refresh token, stored as its SHA-256; each is used once, then rotated."""

    __tablename__ = "refresh_tokens"
    # Retention finds expired tokens by it.
    __table_args__ = (Index("ix_refresh_tokens_expires", "expires_at"),)

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    session_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("sessions.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    successor_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)


class AuthorizationCodeRow(Base):
    """An authorization code (RFC 6749 §4.1), stored as its SHA-256; used once."""

    __tablename__ = "authorization_codes"
    __table_args__ = (Index("ix_codes_expires", "expires_at"),)

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100))
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"))
    browser_session_id: Mapped[str] = mapped_column(String(36))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text, default="")
    audiences: Mapped[list[str]] = mapped_column(JSON)
    nonce: Mapped[str | None] = mapped_column(Text, nullable=True)
    code_challenge: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # The session the exchange opened: a replayed code ends it (RFC 6749 §4.1.2).
    session_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class ConsentRow(Base):
    """The scopes a user let a third-party client have."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    client_id: Mapped[str] = mapped_column(String(100), primary_key=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    granted_at: Mapped[float] = mapped_column(Float)


class SigningKeyRow(Base):
    """A signing key: published from ``published_at``, signs from ``activates_at``.

    It stops signing at ``retires_at`` and leaves the JWKS at ``expires_at``,
    when the last token it signed has expired.
    """

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(String(100), primary_key=True)
    alg: Mapped[str] = mapped_column(String(10))
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSON)
    # JSON of the private JWK, or its AES-GCM encryption when a master key is set.
    private_jwk: Mapped[str] = mapped_column(Text)
    encrypted: Mapped[bool] = mapped_column(Boolean, default=False)
    published_at: Mapped[float] = mapped_column(Float)
    activates_at: Mapped[float] = mapped_column(Float)
    retires_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    expires_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class RevocationRow(Base):
    """A durable revocation event; ``cursor`` orders the feed."""

    __tablename__ = "revocation_events"
    __table_args__ = (Index("ix_revocation_expires", "expires_at"),)

    cursor: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(3))
    value: Mapped[str] = mapped_column(String(200))
    not_before: Mapped[float] = mapped_column(Float)
    expires_at: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float)


class AuditRow(Base):
    """A security event: who did what to whom, from where, with what outcome."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index("ix_audit_at", "at"),
        Index("ix_audit_action", "action"),
        Index("ix_audit_subject", "subject"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    at: Mapped[float] = mapped_column(Float)
    action: Mapped[str] = mapped_column(String(50))
    outcome: Mapped[str] = mapped_column(String(20))
    actor: Mapped[str | None] = mapped_column(String(150), nullable=True)
    subject: Mapped[str | None] = mapped_column(String(150), nullable=True)
    client_id: Mapped[str | None] = mapped_column(String(100), nullable=True)
    client_ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(JSON)


class MetaRow(Base):
    """Server-wide values that must survive restarts (e.g. the refresh-token pepper)."""

    __tablename__ = "meta"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class FactorRow(Base):
    """A second factor of a user: a TOTP authenticator or a passkey (WebAuthn credential)."""

    __tablename__ = "mfa_factors"
    __table_args__ = (Index("ix_mfa_factors_credential", "credential_id", unique=True),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # "totp" or "passkey"
    name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    # TOTP: the base32 secret (sealed with the master key when one is set), and the last
    # time step accepted (each code works once).
    totp_secret: Mapped[str | None] = mapped_column(String(255), nullable=True)
    last_step: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    # Passkey: base64url credential id, COSE public key, signature counter, and whether
    # the credential is synced (backed up): "swk" in amr, else "hwk".
    credential_id: Mapped[str | None] = mapped_column(String(1400), nullable=True)
    public_key: Mapped[str | None] = mapped_column(Text, nullable=True)
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    backed_up: Mapped[bool] = mapped_column(Boolean, default=False)
    # The user may start a sign-in with this passkey alone (passwordless).
    passwordless: Mapped[bool] = mapped_column(Boolean, default=False)


class RecoveryCodeRow(Base):
    """A single-use recovery code, stored as its keyed hash."""

    __tablename__ = "mfa_recovery_codes"

    code_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[float] = mapped_column(Float)
    used_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class MfaChallengeRow(Base):
    """A WebAuthn challenge handed to a browser: consumed by its one answer, or expired."""

    __tablename__ = "mfa_challenges"
    __table_args__ = (Index("ix_mfa_challenges_expires", "expires_at"),)

    # SHA-256 of the challenge: the browser holds the challenge itself.
    challenge_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    purpose: Mapped[str] = mapped_column(String(20))  # "register" or "authenticate"
    # The user the answer must be for; NULL for a passwordless sign-in (anyone's passkey).
    user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    expires_at: Mapped[float] = mapped_column(Float)


class SsfStreamRow(Base):
    """A Shared Signals stream: one receiver (a client) and how its SETs reach it."""

    __tablename__ = "ssf_streams"

    stream_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(100), index=True)
    audience: Mapped[list[str]] = mapped_column(JSON)
    events_requested: Mapped[list[str]] = mapped_column(JSON)
    #: ``urn:ietf:rfc:8936`` (poll) or ``urn:ietf:rfc:8935`` (push).
    delivery_method: Mapped[str] = mapped_column(String(40))
    #: Where push delivery POSTs, and the ``Authorization`` value it sends there.
    endpoint_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    authorization_header: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(10), default="enabled")
    status_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)


class SsfOutboxRow(Base):
    """A signed SET waiting for (or done with) delivery on one stream.

    Written in the transaction of the revocation it announces, so a committed
    revocation is never missing its SET; delivered in ``id`` order, kept until
    acknowledged (poll) or accepted (push).
    """

    __tablename__ = "ssf_outbox"
    __table_args__ = (Index("ix_ssf_outbox_pending", "stream_id", "acknowledged_at", "id"),)

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    stream_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("ssf_streams.stream_id", ondelete="CASCADE")
    )
    jti: Mapped[str] = mapped_column(String(64), unique=True)
    set_token: Mapped[str] = mapped_column(Text)
    created_at: Mapped[float] = mapped_column(Float)
    acknowledged_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: Push delivery: attempts so far, when to try next, and the last failure.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[float] = mapped_column(Float, default=0.0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
