"""API keys of server-to-server integrators (DESIGN.md section 10): their format and scopes.

Shared by auth, which issues and checks keys, and the gateway, which accepts them: a key is
``sk_<id>_<secret>``; ``sk_<id>`` is shown in lists so an admin can tell keys apart, the whole
key only once. A key carries 256 random bits, so a plain SHA-256 is the right hash for it (a
slow password hash would buy nothing against a search space that large, and would cost every
request). The gateway trades a key at auth for a short-lived access token with the key's
scopes, which never leaves the gateway; revoking the key revokes that token's session at once.

Scopes name what an integrator may touch and map onto admin routes in the gateway's route table.
There is no scope to manage keys, users' roles or anything a customer does: a leaked key can do
no more than its scopes, and cannot mint itself a broader one.
"""

from __future__ import annotations

import hashlib
import re
import secrets

# scope -> what it allows, as the admin sees it when issuing a key
SCOPES: dict[str, str] = {
    "catalog:read": "read products and categories, inactive ones included",
    "catalog:write": "create, change and delete products and categories, set stock",
    "orders:read": "list and read every order",
    "orders:write": "move orders along their status machine (ship, deliver, cancel)",
    "customers:read": "list customers and their accounts",
    "pricing:read": "read promotions, shipping zones and tax rates",
    "pricing:write": "create, change and delete promotions, shipping zones and tax rates",
    "webhooks:read": "read webhook endpoints and their deliveries",
    "webhooks:write": "register, change and redeliver webhooks",
}

KEY_PREFIX = "sk_"
_KEY = re.compile(r"^sk_([A-Za-z0-9]{10})_([A-Za-z0-9_-]{43})$")


def new_key() -> tuple[str, str]:
    """A fresh key and its visible prefix (``sk_<id>``)."""
    key_id = "".join(
        secrets.choice("ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789") for _ in range(10)
    )
    return f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}", f"{KEY_PREFIX}{key_id}"


def looks_like_key(token: str) -> bool:
    """Whether a bearer token is meant as an API key (it may still be a wrong one)."""
    return token.startswith(KEY_PREFIX)


def visible_prefix(key: str) -> str | None:
    """``sk_<id>`` of a well-formed key; None for anything else (refused without a lookup)."""
    m = _KEY.match(key)
    return f"{KEY_PREFIX}{m.group(1)}" if m else None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()
