"""media deletions: image objects waiting to be removed from storage once nothing names them

Revision ID: e3b7c1d9a5f2
Revises: d8f2a6b4c9e1
Create Date: 2026-12-04 15:45:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e3b7c1d9a5f2"
down_revision: str | None = "d8f2a6b4c9e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "media_deletions",
        sa.Column("prefix", sa.Text(), nullable=False),
        sa.Column("extension", sa.String(length=8), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("prefix", name=op.f("pk_media_deletions")),
    )
    op.create_index(op.f("ix_media_deletions_due_at"), "media_deletions", ["due_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_media_deletions_due_at"), table_name="media_deletions")
    op.drop_table("media_deletions")
