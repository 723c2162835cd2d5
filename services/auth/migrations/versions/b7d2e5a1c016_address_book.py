"""address book: profile addresses converted to the one address shape

Revision ID: b7d2e5a1c016
Revises: 4a9c06468e01
Create Date: 2026-12-03 15:20:00

The first-wave profile entries ({label, full_name, line1, line2, city, region, postal_code,
country, phone, is_default}) become book entries ({id, is_default, name, line1, line2, city,
region, postal_code, country, phone}) in the same users.addresses list. Nothing is dropped:
`name` is full_name, else the account's name; a label, and any other key the shape has no place
for, is appended to line2 as "key: value"; a country is upper-cased and kept as stored even when
it is not an ISO code (the owner's next edit must fix it); an entry that is not an object at all
is kept whole as line1. Exactly one entry ends up the default (the first marked, else the first).
"""

import json
import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b7d2e5a1c016"
down_revision: str | None = "4a9c06468e01"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SHAPE = ("line1", "line2", "city", "region", "postal_code", "country", "phone")

users = sa.table(
    "users",
    sa.column("id", sa.UUID()),
    sa.column("name", sa.String()),
    sa.column("addresses", postgresql.JSONB()),
)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def convert_entry(entry: Any, owner_name: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        return {
            "id": str(uuid.uuid4()),
            "is_default": False,
            "name": owner_name,
            "line1": _text(entry),
            "line2": None,
            "city": "",
            "region": None,
            "postal_code": "",
            "country": "",
            "phone": None,
        }
    out: dict[str, Any] = {"id": str(uuid.uuid4()), "is_default": entry.get("is_default") is True}
    out["name"] = _text(entry.get("full_name") or entry.get("name") or owner_name)
    for key in _SHAPE:
        value = entry.get(key)
        out[key] = None if value is None else _text(value)
    for key in ("line1", "city", "postal_code", "country"):
        out[key] = out[key] or ""
    out["country"] = out["country"].strip().upper()
    extras = [
        f"{k}: {_text(v)}"
        for k, v in entry.items()
        if k not in (*_SHAPE, "full_name", "name", "is_default", "id") and v is not None
    ]
    if entry.get("full_name") and entry.get("name"):
        extras.append(f"name: {_text(entry['name'])}")
    if extras:
        out["line2"] = "; ".join([*([out["line2"]] if out["line2"] else []), *extras])
    return out


def convert_book(entries: Any, owner_name: str) -> list[dict[str, Any]]:
    book = [convert_entry(e, owner_name) for e in (entries if isinstance(entries, list) else [entries])]
    if book:
        chosen = next((e["id"] for e in book if e["is_default"]), book[0]["id"])
        for e in book:
            e["is_default"] = e["id"] == chosen
    return book


def upgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.name, users.c.addresses)).all()
    for user_id, name, entries in rows:
        if not entries:
            continue
        bind.execute(
            users.update().where(users.c.id == user_id).values(addresses=convert_book(entries, name))
        )


def downgrade() -> None:
    # the first-wave shape: full_name for name, ids dropped; the rest of the fields are the same
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.addresses)).all()
    for user_id, entries in rows:
        if not entries:
            continue
        old = [
            {
                "full_name": e.get("name"),
                **{k: e.get(k) for k in _SHAPE},
                "is_default": bool(e.get("is_default")),
            }
            for e in entries
            if isinstance(e, dict)
        ]
        bind.execute(users.update().where(users.c.id == user_id).values(addresses=old))
