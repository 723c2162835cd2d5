"""The cart as it is shown (Cart wire shape of DESIGN.md section 2), from plain rows.

``GET /cart`` is the shop's most frequent signed-in read, and loading it as ORM objects
and validating them into pydantic models was most of what the cart spent on it: py-spy
put half of a request's samples in SQLAlchemy's session, execution and object loading for
its two selects, and a twentieth in validating and dumping the models. So the read is one
statement on the driver's own connection (the line, its product and the variant it stands
for in one row) and the answer is dumped with orjson from the rows. The changes of a cart
build the same rows from their ORM objects (:func:`line_row`) and go through the same
:func:`cart_view`, so the rules of price, stock and availability are written once.
"""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import orjson
import sqlalchemy.exc
from sqlalchemy.ext.asyncio import AsyncEngine

from services.cart.models import CartItem, Product, Variant

# One row per line, in the order of the rows of ``cart_view``. The variant a line stands for:
# the one it names, if its product has it; a line from before variants (no variant named)
# stands for its product's only live variant, none when there are several or none.
CART_SQL = """
SELECT i.id::text, i.product_id::text, i.variant_id::text, i.quantity, i.added_unit_price,
       p.name, p.image, p.price, p.currency, p.stock, p.is_active AND NOT p.deleted,
       v.variant_id::text, v.sku, v.title, v.options, v.price, v.stock, v.is_active AND NOT v.retired
FROM cart_items i
JOIN products p ON p.product_id = i.product_id
LEFT JOIN variants v ON v.product_id = i.product_id AND v.variant_id = COALESCE(
    i.variant_id,
    (SELECT (array_agg(w.variant_id))[1] FROM variants w
     WHERE w.product_id = i.product_id AND NOT w.retired HAVING count(*) = 1)
)
WHERE i.user_id = $1
ORDER BY i.created_at, i.id
"""

Row = tuple[Any, ...]


def line_row(item: CartItem, product: Product, variant: Variant | None) -> Row:
    """An ORM line as the row :data:`CART_SQL` gives for it."""
    v = variant
    return (
        item.id,
        item.product_id,
        item.variant_id,
        item.quantity,
        item.added_unit_price,
        product.name,
        product.image,
        product.price,
        product.currency,
        product.stock,
        product.is_active and not product.deleted,
        *(
            (v.variant_id, v.sku, v.title, v.options, v.price, v.stock, v.is_active and not v.retired)
            if v is not None
            else (None,) * 7
        ),
    )


def cart_view(rows: list[Row] | list[asyncpg.Record], default_currency: str) -> dict[str, Any]:
    """The cart's wire shape (``CartPublic``'s fields in its order) from its lines' rows.

    The cart's currency is its first line's; a line is unavailable when it is not sold or its
    product is now priced in another currency, and unavailable lines are left out of the subtotal.
    """
    currency = rows[0][8] if rows else default_currency
    items = []
    item_count = subtotal = 0
    for (
        line_id,
        product_id,
        item_variant_id,
        quantity,
        added_unit_price,
        name,
        image,
        product_price,
        product_currency,
        product_stock,
        product_sold,
        variant_id,
        sku,
        title,
        options,
        variant_price,
        variant_stock,
        variant_sold,
    ) in rows:
        if variant_id is None:
            price, stock, sold, options = product_price, product_stock, product_sold, {}
        else:
            price, stock, sold = variant_price, variant_stock, product_sold and variant_sold
            options = dict(options)
        line_total = price * quantity
        if not sold or product_currency != currency:
            availability = "unavailable"
        else:
            subtotal += line_total
            availability = (
                "out_of_stock" if stock <= 0 else "insufficient_stock" if stock < quantity else "available"
            )
        item_count += quantity
        items.append(
            {
                "id": line_id,
                "product_id": product_id,
                "variant_id": variant_id if variant_id is not None else item_variant_id,
                "sku": sku,
                "title": title,
                "options": options,
                "name": name,
                "image": image,
                "unit_price": price,
                "added_unit_price": added_unit_price,
                "currency": product_currency,
                "quantity": quantity,
                "line_total": line_total,
                "stock": stock,
                "availability": availability,
            }
        )
    return {
        "items": items,
        "count": len(items),
        "item_count": item_count,
        "subtotal": subtotal,
        "currency": currency,
    }


async def cart_json(engine: AsyncEngine, user_id: uuid.UUID, default_currency: str) -> bytes:
    """The user's cart as ``CartPublic``'s JSON, read outside a transaction on the driver's connection.

    Its errors are raised as SQLAlchemy's, as every other read's are: a database out of reach
    is the same 503, and a connection found dead is dropped from the pool.
    """
    async with engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None
        try:
            rows = await driver.fetch(CART_SQL, user_id)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            gone = driver.is_closed() or isinstance(exc, (asyncpg.PostgresConnectionError, OSError))
            if gone:
                await conn.invalidate(exc)
            raise sqlalchemy.exc.DBAPIError(CART_SQL, (user_id,), exc, connection_invalidated=gone) from exc
    return orjson.dumps(cart_view(rows, default_currency))
