"""The address book: a user's saved addresses, kept in the ``users.addresses`` JSONB list.

One list is the single truth for both the book routes and the profile's ``addresses`` field, so
the two can never disagree. Each edit locks the user's row (SELECT ... FOR UPDATE), which makes
"exactly one default while the book is not empty" hold under concurrent requests. The list is
bounded (MAX_ADDRESSES), so rewriting it whole on each edit stays cheap.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound
from libs.contracts.addresses import SavedAddress
from services.auth.models import User
from services.auth.schemas import AddressIn

MAX_ADDRESSES = 20


def _entry(body: AddressIn, *, id_: uuid.UUID, is_default: bool) -> dict[str, Any]:
    fields = body.model_dump(mode="json", exclude={"is_default"})
    return {"id": str(id_), "is_default": is_default, **fields}


def _settle_default(book: list[dict[str, Any]], preferred: str | None = None) -> list[dict[str, Any]]:
    """Exactly one default when the book has entries: ``preferred``, else the current one, else the first."""
    if not book:
        return book
    chosen = preferred or next((e["id"] for e in book if e.get("is_default")), book[0]["id"])
    return [{**e, "is_default": e["id"] == chosen} for e in book]


async def _locked_user(session: AsyncSession, user_id: uuid.UUID) -> User:
    user = await session.scalar(sa.select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise NotFound("This account does not exist.")
    return user


def _find(book: list[dict[str, Any]], address_id: uuid.UUID) -> int:
    for i, entry in enumerate(book):
        if entry.get("id") == str(address_id):
            return i
    # someone else's address id answers exactly as a missing one does: no probing of other books
    raise NotFound("No such address in your address book.")


def public(book: Sequence[dict[str, Any]]) -> list[SavedAddress]:
    return [SavedAddress.model_validate(e) for e in book]


async def list_book(*, session: AsyncSession, user_id: uuid.UUID) -> list[SavedAddress]:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("This account does not exist.")
    return public(user.addresses or [])


async def add(*, session: AsyncSession, user_id: uuid.UUID, body: AddressIn) -> SavedAddress:
    """Save a new address; the first one (or one sent with is_default) becomes the default."""
    new_id = uuid.uuid4()
    async with session.begin():
        user = await _locked_user(session, user_id)
        book = list(user.addresses or [])
        if len(book) >= MAX_ADDRESSES:
            raise Conflict(
                f"An address book holds at most {MAX_ADDRESSES} addresses; delete one first.",
                limit=MAX_ADDRESSES,
            )
        book.append(_entry(body, id_=new_id, is_default=False))
        user.addresses = _settle_default(book, str(new_id) if body.is_default else None)
        saved = user.addresses[-1]
    return SavedAddress.model_validate(saved)


async def replace(
    *, session: AsyncSession, user_id: uuid.UUID, address_id: uuid.UUID, body: AddressIn
) -> SavedAddress:
    """Rewrite one address; is_default true makes it the default (false is ignored: one must stay)."""
    async with session.begin():
        user = await _locked_user(session, user_id)
        book = list(user.addresses or [])
        i = _find(book, address_id)
        book[i] = _entry(body, id_=address_id, is_default=bool(book[i].get("is_default")))
        user.addresses = _settle_default(book, str(address_id) if body.is_default else None)
        saved = user.addresses[i]
    return SavedAddress.model_validate(saved)


async def delete(*, session: AsyncSession, user_id: uuid.UUID, address_id: uuid.UUID) -> None:
    """Remove one address; when it was the default, the oldest remaining one takes over."""
    async with session.begin():
        user = await _locked_user(session, user_id)
        book = list(user.addresses or [])
        del book[_find(book, address_id)]
        user.addresses = _settle_default(book)


def from_profile(items: Sequence[AddressIn]) -> list[dict[str, Any]]:
    """The book a profile PUT sets: the addresses as sent, new ids, one default.

    The profile field replaces the whole book (its first-wave meaning); the default is the entry
    sent with is_default, else the first.
    """
    book = [_entry(a, id_=uuid.uuid4(), is_default=False) for a in items]
    preferred = next((e["id"] for e, a in zip(book, items, strict=True) if a.is_default), None)
    return _settle_default(book, preferred)


async def internal_get(*, session: AsyncSession, user_id: uuid.UUID, address_id: uuid.UUID) -> SavedAddress:
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("No such address.")
    book = list(user.addresses or [])
    return SavedAddress.model_validate(book[_find(book, address_id)])
