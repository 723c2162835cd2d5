"""API keys: issued by admins, shown once, kept as a hash, traded by the gateway for short-lived tokens.

The token a key is traded for carries the key's scopes (``scp``) and the key's id as subject and
session, so every part's revocation check refuses it the moment the key is revoked, within the
token's short life at the latest even if Redis lost the mark. ``last_used_at`` moves when the
gateway trades the key, which it does about once a minute while the key is in use; a write per
request would turn every integrator call into a database write.
"""

from __future__ import annotations

import hmac
import uuid
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.apikeys import key_hash, new_key, visible_prefix
from libs.common.auth import Principal, revoke_session
from libs.common.errors import Conflict, Forbidden, NotFound, Unauthorized
from services.auth.context import AuthContext
from services.auth.models import ApiKey
from services.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPage, ApiKeyPublic, ApiKeyToken

MAX_LIVE_KEYS = 50
LAST_USED_EVERY = timedelta(seconds=60)


async def create(*, session: AsyncSession, admin: Principal, body: ApiKeyCreate) -> ApiKeyCreated:
    """A new key; its whole text is in this answer and nowhere else."""
    if admin.scopes is not None:
        raise Forbidden("An API key cannot issue keys; an admin signed in does.")
    for _ in range(3):  # the visible id is random: a clash is retried with another
        key, prefix = new_key()
        try:
            async with session.begin():
                live = await session.scalar(
                    sa.select(sa.func.count()).select_from(ApiKey).where(ApiKey.revoked_at.is_(None))
                )
                if (live or 0) >= MAX_LIVE_KEYS:
                    raise Conflict(
                        f"There are already {MAX_LIVE_KEYS} live API keys; revoke unused ones first.",
                        limit=MAX_LIVE_KEYS,
                    )
                row = ApiKey(
                    id=uuid.uuid4(),
                    name=body.name,
                    prefix=prefix,
                    key_hash=key_hash(key),
                    scopes=body.scopes,
                    created_by=admin.user_id,
                    created_at=datetime.now(UTC),
                )
                session.add(row)
        except IntegrityError:
            continue
        return ApiKeyCreated(**ApiKeyPublic.model_validate(row).model_dump(), key=key)
    raise Conflict("Could not make a unique key; try again.")


async def listing(*, session: AsyncSession, page: int, page_size: int, revoked: bool | None) -> ApiKeyPage:
    where = (
        []
        if revoked is None
        else [ApiKey.revoked_at.is_not(None) if revoked else ApiKey.revoked_at.is_(None)]
    )
    async with session.begin():
        total = await session.scalar(sa.select(sa.func.count()).select_from(ApiKey).where(*where))
        rows = (
            await session.scalars(
                sa.select(ApiKey)
                .where(*where)
                .order_by(ApiKey.created_at.desc(), ApiKey.id)
                .offset((page - 1) * page_size)
                .limit(page_size)
            )
        ).all()
    return ApiKeyPage(
        items=[ApiKeyPublic.model_validate(r) for r in rows], total=total or 0, page=page, page_size=page_size
    )


async def revoke(*, ctx: AuthContext, session: AsyncSession, key_id: uuid.UUID) -> ApiKeyPublic:
    """Revoke at once: the key is refused at its next trade, its current token at its next use."""
    async with session.begin():
        row = await session.get(ApiKey, key_id, with_for_update=True)
        if row is None:
            raise NotFound("No such API key.")
        row.revoked_at = row.revoked_at or datetime.now(UTC)
    ttl = ctx.state.settings.api_key_token_ttl
    await revoke_session(ctx.redis, ctx.settings.redis_prefix, str(key_id), ttl_seconds=ttl + 60)
    return ApiKeyPublic.model_validate(row)


async def exchange(*, ctx: AuthContext, session: AsyncSession, key: str) -> ApiKeyToken:
    """The gateway's trade: a live key for a short-lived token with its scopes."""
    prefix = visible_prefix(key)
    if prefix is None:
        raise Unauthorized("This is not a valid API key.")
    now = datetime.now(UTC)
    async with session.begin():
        row = await session.scalar(sa.select(ApiKey).where(ApiKey.prefix == prefix))
        if row is None or not hmac.compare_digest(row.key_hash, key_hash(key)):
            raise Unauthorized("This is not a valid API key.")
        if row.revoked_at is not None:
            raise Unauthorized("This API key was revoked.")
        if row.last_used_at is None or now - row.last_used_at >= LAST_USED_EVERY:
            await session.execute(sa.update(ApiKey).where(ApiKey.id == row.id).values(last_used_at=now))
        key_id, scopes = row.id, list(row.scopes)
    token, ttl = await ctx.state.keys.mint(
        user_id=key_id, role="admin", sid=key_id, ttl=ctx.state.settings.api_key_token_ttl, scopes=scopes
    )
    return ApiKeyToken(access_token=token, expires_in=ttl, key_id=key_id, scopes=scopes)
