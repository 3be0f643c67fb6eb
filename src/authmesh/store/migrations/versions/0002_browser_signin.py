"""browser sign-in: redirect URIs, browser sessions, authorization codes, consents

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 11:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("redirect_uris", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
        batch_op.add_column(
            sa.Column(
                "post_logout_redirect_uris",
                sa.JSON(),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(
            sa.Column("first_party", sa.Boolean(), nullable=False, server_default=sa.true())
        )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.String(length=36), nullable=True))
        batch_op.add_column(sa.Column("browser_secret_hash", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("amr", sa.JSON(), nullable=True))
        batch_op.create_index("ix_sessions_parent_id", ["parent_id"], unique=False)
        batch_op.create_index("ix_sessions_browser_secret", ["browser_secret_hash"], unique=True)
    op.create_table(
        "authorization_codes",
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("browser_session_id", sa.String(length=36), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scope", sa.Text(), nullable=False),
        sa.Column("audiences", sa.JSON(), nullable=False),
        sa.Column("nonce", sa.Text(), nullable=True),
        sa.Column("code_challenge", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("expires_at", sa.Float(), nullable=False),
        sa.Column("used_at", sa.Float(), nullable=True),
        sa.Column("session_id", sa.String(length=36), nullable=True),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("code_hash"),
    )
    op.create_index("ix_codes_expires", "authorization_codes", ["expires_at"], unique=False)
    op.create_table(
        "consents",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        sa.Column("granted_at", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "client_id"),
    )


def downgrade() -> None:
    op.drop_table("consents")
    op.drop_index("ix_codes_expires", table_name="authorization_codes")
    op.drop_table("authorization_codes")
    with op.batch_alter_table("sessions", schema=None) as batch_op:
        batch_op.drop_index("ix_sessions_browser_secret")
        batch_op.drop_index("ix_sessions_parent_id")
        batch_op.drop_column("amr")
        batch_op.drop_column("browser_secret_hash")
        batch_op.drop_column("parent_id")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_column("email")
    with op.batch_alter_table("clients", schema=None) as batch_op:
        batch_op.drop_column("first_party")
        batch_op.drop_column("post_logout_redirect_uris")
        batch_op.drop_column("redirect_uris")
