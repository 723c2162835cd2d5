"""api keys

Keys of server-to-server integrators (issue 18): a hash and a visible prefix, never the key.

Revision ID: 71698925ae39
Revises: 3ec57d49d0df
Create Date: 2026-12-03 16:46:52.935819
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '71698925ae39'
down_revision: str | None = '3ec57d49d0df'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('prefix', sa.String(length=16), nullable=False),
    sa.Column('key_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', sa.ARRAY(sa.String(length=32)), nullable=False),
    sa.Column('created_by', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )


def downgrade() -> None:
    op.drop_table('api_keys')
