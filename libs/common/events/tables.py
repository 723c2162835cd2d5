"""The outbox and inbox tables each service owns in its own database."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID


def add_event_tables(metadata: sa.MetaData) -> None:
    """Declare ``outbox`` and ``processed_events`` in a service's metadata (for Alembic)."""
    sa.Table(
        "outbox",
        metadata,
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", UUID(as_uuid=True), nullable=False, unique=True),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        # the W3C trace context of the transaction that wrote the event (JSON), published with it
        sa.Column("headers", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Index("ix_outbox_pending", "seq", postgresql_where=sa.text("sent_at IS NULL")),
    )
    sa.Table(
        "processed_events",
        metadata,
        sa.Column("event_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("consumer", sa.Text, primary_key=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


# Lightweight table clauses for DML: they need no service's MetaData.
outbox_t = sa.table(
    "outbox",
    sa.column("seq", sa.BigInteger),
    sa.column("id", UUID(as_uuid=True)),
    sa.column("routing_key"),
    sa.column("payload"),
    sa.column("headers"),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("sent_at", sa.DateTime(timezone=True)),
)
processed_t = sa.table(
    "processed_events",
    sa.column("event_id", UUID(as_uuid=True)),
    sa.column("consumer"),
)
