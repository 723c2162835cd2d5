"""Image bytes leave storage once no row names them, even when storage is down at that moment.

Object storage is not in the database's transaction, so deleting an image (or the product that
has it) cannot remove its objects atomically. Instead the transaction that deletes the rows writes
the image's prefix to ``media_deletions``; right after the commit the objects are removed and the
row with them. When storage is down then, the row stays and the sweeper tries again with back-off
(``FOR UPDATE SKIP LOCKED``: any number of replicas remove each image once).

An upload writes such a row, due later, before it stores any bytes, and deletes it in the
transaction that writes the image's row: a process killed in between leaves bytes no row names,
and the sweeper removes them when the row falls due. A prefix an image row still names is never
removed, whatever the deletions table says.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.logging import get_logger
from services.catalog import media
from services.catalog.models import MediaDeletion, ProductImage

log = get_logger(__name__)

# an upload's bytes are orphans if its row is not written within this time (storing 3 objects of
# at most 10 MB takes seconds)
UPLOAD_GRACE = timedelta(minutes=15)
# storage down: try again after 30 s, doubling to an hour
RETRY_FIRST, RETRY_MAX = 30.0, 3600.0


def keys_of(prefix: str, extension: str) -> list[str]:
    """Every object an image has: the original and its thumbnails."""
    return [media.MediaStore.key(prefix, name, extension) for name in ("original", *media.THUMBNAILS)]


async def condemn(
    session: AsyncSession, prefix: str, extension: str, *, due_at: datetime | None = None
) -> None:
    """Note in the caller's transaction that ``prefix``'s objects are to go (now, or at ``due_at``)."""
    due = due_at or datetime.now(UTC)
    await session.execute(
        insert(MediaDeletion)
        .values(prefix=prefix, extension=extension, due_at=due)
        .on_conflict_do_update(index_elements=["prefix"], set_={"due_at": due})
    )


async def reprieve(session: AsyncSession, prefix: str) -> bool:
    """An upload's row is written: its bytes stay. False when the sweeper already took them."""
    result = await session.execute(sa.delete(MediaDeletion).where(MediaDeletion.prefix == prefix))
    return bool(getattr(result, "rowcount", 0))


async def sweep(
    session: AsyncSession, store: media.MediaStore, *, prefixes: list[str] | None = None, batch: int = 50
) -> int:
    """Remove the objects of due deletions (or of ``prefixes`` alone, due or not); how many went.

    Each row is locked while its objects are removed, so two sweepers never work on one image;
    a failure keeps the row for later with the error and a later due time.
    """
    if not store.enabled:
        return 0
    now = datetime.now(UTC)
    query = sa.select(MediaDeletion).order_by(MediaDeletion.due_at).limit(batch)
    if prefixes is not None:
        if not prefixes:
            return 0
        query = query.where(MediaDeletion.prefix.in_(prefixes))
    else:
        query = query.where(MediaDeletion.due_at <= now)
    removed = 0
    async with session.begin():
        rows = list((await session.scalars(query.with_for_update(skip_locked=True))).all())
        named = set(
            (
                await session.scalars(
                    sa.select(ProductImage.prefix).where(ProductImage.prefix.in_([r.prefix for r in rows]))
                )
            ).all()
        )
        for row in rows:
            if row.prefix not in named:
                try:
                    await store.delete(keys_of(row.prefix, row.extension))
                except Exception as exc:  # storage down or refusing: later, with back-off
                    delay = min(RETRY_MAX, RETRY_FIRST * 2**row.attempts)
                    row.attempts += 1
                    row.due_at = now + timedelta(seconds=delay)
                    row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                    log.warning(
                        "media_delete_failed", prefix=row.prefix, attempts=row.attempts, error=row.last_error
                    )
                    continue
                removed += 1
            await session.delete(row)
    return removed


async def purge_now(session: AsyncSession, store: media.MediaStore, prefixes: list[str]) -> None:
    """Right after a commit that condemned ``prefixes``: remove them, or leave them to the sweeper."""
    try:
        await sweep(session, store, prefixes=prefixes)
    except Exception as exc:  # the database went away meanwhile: the rows are there for the sweeper
        log.warning("media_purge_deferred", count=len(prefixes), error=f"{type(exc).__name__}: {exc}"[:200])
