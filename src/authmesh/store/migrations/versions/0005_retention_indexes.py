"""retention: indexes that find expired refresh tokens and ended sessions

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 13:30:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_refresh_tokens_expires", "refresh_tokens", ["expires_at"])
    op.create_index("ix_sessions_ended", "sessions", ["ended_at"])
    op.create_index("ix_sessions_expires", "sessions", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_sessions_expires", table_name="sessions")
    op.drop_index("ix_sessions_ended", table_name="sessions")
    op.drop_index("ix_refresh_tokens_expires", table_name="refresh_tokens")
