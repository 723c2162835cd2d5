"""outbox trace context

An outbox row keeps the W3C trace context of the transaction that wrote it, so the relay
publishes the event in that request's trace however much later it runs (issue 20). Rows
written before, or while not tracing, have none.

Revision ID: d0dec157ffa5
Revises: 8425da61d28a
Create Date: 2026-12-03 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d0dec157ffa5"
down_revision: str | None = "8425da61d28a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("outbox", sa.Column("headers", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("outbox", "headers")
