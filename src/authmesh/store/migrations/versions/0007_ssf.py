"""Shared Signals: streams and the outbox of signed SETs per stream

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 14:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "ssf_streams",
        sa.Column("stream_id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=False),
        sa.Column("audience", sa.JSON(), nullable=False),
        sa.Column("events_requested", sa.JSON(), nullable=False),
        sa.Column("delivery_method", sa.String(length=40), nullable=False),
        sa.Column("endpoint_url", sa.Text(), nullable=True),
        sa.Column("authorization_header", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("stream_id"),
    )
    op.create_index("ix_ssf_streams_client_id", "ssf_streams", ["client_id"])
    op.create_table(
        "ssf_outbox",
        sa.Column("id", _BigId, autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(length=36), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("set_token", sa.Text(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        sa.Column("acknowledged_at", sa.Float(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.Float(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["stream_id"], ["ssf_streams.stream_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("jti"),
    )
    op.create_index("ix_ssf_outbox_pending", "ssf_outbox", ["stream_id", "acknowledged_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_ssf_outbox_pending", table_name="ssf_outbox")
    op.drop_table("ssf_outbox")
    op.drop_index("ix_ssf_streams_client_id", table_name="ssf_streams")
    op.drop_table("ssf_streams")
