"""Business rules of carts and wishlists: keyword-only async functions raising DomainErrors.

Reads go through the product read-model only; catalog is asked (once) only about a
product the read-model has never seen. Every change of a user's cart runs under a
per-user transaction lock so two racing requests cannot both pass the limits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound, Unprocessable
from services.cart import readmodel, view
from services.cart.context import CartContext
from services.cart.models import CartItem, Product, Variant, WishlistEntry
from services.cart.schemas import (
    MAX_QUANTITY,
    Availability,
    CartPublic,
    WishlistEntryPublic,
    WishlistPublic,
)


async def _lock_cart(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"cart:{user_id}", 0)))
    )


@dataclass
class Line:
    """A cart line with what the read-model knows of its product and variant."""

    item: CartItem
    product: Product
    # None only for a line from before variants whose product's variants are not known yet
    variant: Variant | None


# the reads of every cart view, built once: building a select and deriving its cache key were
# about a tenth of a GET /cart's CPU (a prebuilt statement's key is computed once and kept)
_VARIANTS_OF = (
    sa.select(Variant)
    .where(Variant.product_id.in_(sa.bindparam("product_ids", expanding=True)))
    .order_by(Variant.position, Variant.variant_id)
    .execution_options(populate_existing=True)
)
_LINES_OF = (
    sa.select(CartItem, Product)
    .join(Product, Product.product_id == CartItem.product_id)
    .where(CartItem.user_id == sa.bindparam("user_id"))
    .order_by(CartItem.created_at, CartItem.id)
    .execution_options(populate_existing=True)
)


async def _variants_of(
    session: AsyncSession, product_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, list[Variant]]:
    rows = await session.execute(_VARIANTS_OF, {"product_ids": list(set(product_ids))})
    out: dict[uuid.UUID, list[Variant]] = defaultdict(list)
    for v in rows.scalars():
        out[v.product_id].append(v)
    return out


def _live(variants: list[Variant]) -> list[Variant]:
    return [v for v in variants if not v.retired]


def _variant_for(variant_id: uuid.UUID | None, variants: list[Variant]) -> Variant | None:
    """The line's variant: the one it names, or (a line from before variants) its product's only one."""
    if variant_id is not None:
        return next((v for v in variants if v.variant_id == variant_id), None)
    live = _live(variants)
    return live[0] if len(live) == 1 else None


async def _lines(session: AsyncSession, user_id: uuid.UUID) -> list[Line]:
    rows = (await session.execute(_LINES_OF, {"user_id": user_id})).all()
    variants = await _variants_of(session, (product.product_id for _, product in rows))
    return [
        Line(item, product, _variant_for(item.variant_id, variants[product.product_id]))
        for item, product in rows
    ]


def _sold(product: Product, variant: Variant | None = None) -> bool:
    if variant is not None and (variant.retired or not variant.is_active):
        return False
    return product.is_active and not product.deleted


def _price(product: Product, variant: Variant | None) -> int:
    return variant.price if variant is not None else product.price


def _stock(product: Product, variant: Variant | None) -> int:
    return variant.stock if variant is not None else product.stock


def _cart(lines: list[Line], default_currency: str) -> CartPublic:
    rows = [view.line_row(line.item, line.product, line.variant) for line in lines]
    return CartPublic.model_validate(view.cart_view(rows, default_currency))


def _refuse_unsold(product: Product, variant: Variant | None = None) -> None:
    if product.deleted or (variant is not None and variant.retired):
        raise Conflict(
            f"'{_label(product, variant)}' is no longer sold.",
            title="Product unavailable",
            type_="product-unavailable",
            product_id=str(product.product_id),
            **_naming(variant),
        )
    if not product.is_active or (variant is not None and not variant.is_active):
        raise Conflict(
            f"'{_label(product, variant)}' is not available right now.",
            title="Product unavailable",
            type_="product-unavailable",
            product_id=str(product.product_id),
            **_naming(variant),
        )


def _naming(variant: Variant | None) -> dict[str, Any]:
    return {"variant_id": str(variant.variant_id)} if variant is not None else {}


def _label(product: Product, variant: Variant | None) -> str:
    if variant is None or not variant.options:
        return product.name
    return f"{product.name} ({variant.title})"


def _refuse_over_stock(product: Product, variant: Variant | None, wanted: int, in_cart: int) -> None:
    stock = _stock(product, variant)
    if wanted > stock:
        label = _label(product, variant)
        if stock == 0:
            detail = f"'{label}' is out of stock."
        else:
            detail = f"Only {stock} of '{label}' are available" + (
                f" and your cart already holds {in_cart}." if in_cart else "."
            )
        raise Conflict(
            detail,
            title="Not enough stock",
            type_="insufficient-stock",
            product_id=str(product.product_id),
            **_naming(variant),
            available=stock,
            in_cart=in_cart,
        )


async def cart_json(*, ctx: CartContext, user_id: uuid.UUID) -> bytes:
    """The user's cart (``CartPublic``) as JSON, from one statement on the driver (services/cart/view.py)."""
    assert ctx.db is not None  # cart has its database
    return await view.cart_json(ctx.db.engine, user_id, ctx.settings.default_currency)


async def get_cart(*, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID) -> CartPublic:
    """The user's cart with current names, prices and availability.

    Read outside a transaction (autocommit): its two statements each see the data as it
    is, which is all a view of a read-model promises. BEGIN and COMMIT around them were two
    round trips and about a sixth of the CPU of the shop's most frequent signed-in read.
    """
    await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
    return _cart(await _lines(session, user_id), ctx.settings.default_currency)


async def _product_id_of(session: AsyncSession, variant_id: uuid.UUID) -> uuid.UUID:
    async with session.begin():
        product_id = await session.scalar(
            sa.select(Variant.product_id).where(Variant.variant_id == variant_id)
        )
    if product_id is None:
        raise NotFound(
            f"Variant {variant_id} is not known yet; send its product_id too.", title="Unknown variant"
        )
    return product_id


async def _choose(
    session: AsyncSession, product: Product, variant_id: uuid.UUID | None, *, required: bool = True
) -> Variant | None:
    """The variant a request means: the one it names, or the product's only one (422 naming the options
    when it has several and ``required``)."""
    variants = (await _variants_of(session, [product.product_id]))[product.product_id]
    if variant_id is not None:
        variant = next((v for v in variants if v.variant_id == variant_id), None)
        if variant is None:
            raise Unprocessable(
                f"Variant {variant_id} is not a variant of '{product.name}'.",
                errors=[
                    {"field": "variant_id", "message": "not a variant of this product", "type": "not_found"}
                ],
            )
        return variant
    live = _live(variants)
    if len(live) > 1 and required:
        names = sorted({name for v in live for name in v.options})
        raise Unprocessable(
            f"'{product.name}' comes in several variants: choose its {', '.join(names)} (send variant_id).",
            title="Variant required",
            type_="variant-required",
            options=names,
            errors=[
                {"field": "variant_id", "message": f"required: choose {', '.join(names)}", "type": "missing"}
            ],
        )
    return live[0] if len(live) == 1 else None


async def add_item(
    *,
    ctx: CartContext,
    session: AsyncSession,
    user_id: uuid.UUID,
    product_id: uuid.UUID | None,
    quantity: int,
    variant_id: uuid.UUID | None = None,
) -> tuple[CartPublic, bool]:
    """Add units of a variant (a new line, or more of an existing one); True when a line was created.

    ``product_id`` alone means the product's only variant; with several it is a 422 naming the
    options to choose.
    """
    settings = ctx.settings
    if product_id is None:
        if variant_id is None:
            raise Unprocessable(
                "Name what to add: variant_id, or product_id for a product with one variant.",
                errors=[
                    {
                        "field": "product_id",
                        "message": "product_id or variant_id is required",
                        "type": "missing",
                    }
                ],
            )
        product_id = await _product_id_of(session, variant_id)
    await readmodel.ensure_known(ctx=ctx, session=session, product_id=product_id)
    async with session.begin():
        await _lock_cart(session, user_id)
        lines = await _lines(session, user_id)
        product = await session.scalar(
            sa.select(Product)
            .where(Product.product_id == product_id)
            .execution_options(populate_existing=True)
        )
        assert product is not None  # ensure_known stored it; read-model rows are never deleted
        variant = await _choose(session, product, variant_id)
        _refuse_unsold(product, variant)
        chosen = variant.variant_id if variant is not None else None

        def same(line: Line) -> bool:
            if line.item.product_id != product_id:
                return False
            # a line from before variants is the product's only variant
            return line.item.variant_id == chosen or (
                line.item.variant_id is None
                and line.variant is not None
                and line.variant.variant_id == chosen
            )

        existing = next((line.item for line in lines if same(line)), None)
        others = [line.product for line in lines if line.item.product_id != product_id]
        if others and others[0].currency != product.currency:
            raise Conflict(
                f"Your cart is in {others[0].currency} and '{product.name}' is priced in "
                f"{product.currency}; one cart holds one currency.",
                title="Currency mismatch",
                type_="currency-mismatch",
                cart_currency=others[0].currency,
                product_currency=product.currency,
            )
        in_cart = existing.quantity if existing else 0
        wanted = in_cart + quantity
        if wanted > MAX_QUANTITY:
            raise Conflict(
                f"A cart holds at most {MAX_QUANTITY} of one product; you have {in_cart} "
                f"of '{_label(product, variant)}', so you can add {MAX_QUANTITY - in_cart} more.",
                title="Quantity limit",
                type_="quantity-limit",
                max_quantity=MAX_QUANTITY,
                in_cart=in_cart,
            )
        _refuse_over_stock(product, variant, wanted, in_cart)
        if existing is not None:
            existing.quantity = wanted
            existing.variant_id = chosen
        else:
            if len(lines) >= settings.max_cart_lines:
                raise Conflict(
                    f"A cart holds at most {settings.max_cart_lines} different products.",
                    title="Cart full",
                    type_="cart-full",
                )
            session.add(
                CartItem(
                    user_id=user_id,
                    product_id=product_id,
                    variant_id=chosen,
                    quantity=quantity,
                    added_unit_price=_price(product, variant),
                    currency=product.currency,
                )
            )
        await session.flush()
        return _cart(await _lines(session, user_id), settings.default_currency), existing is None


async def _own_item(session: AsyncSession, *, user_id: uuid.UUID, item_id: uuid.UUID) -> CartItem:
    # another user's item is "not found", never "forbidden": its existence is not confirmed
    item = await session.scalar(
        sa.select(CartItem)
        .where(CartItem.id == item_id, CartItem.user_id == user_id)
        .execution_options(populate_existing=True)
    )
    if item is None:
        raise NotFound(f"There is no item {item_id} in your cart.", title="Cart item not found")
    return item


async def set_quantity(
    *, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID, item_id: uuid.UUID, quantity: int
) -> CartPublic:
    """Set a line's quantity; 0 removes the line."""
    async with session.begin():
        await _lock_cart(session, user_id)
        item = await _own_item(session, user_id=user_id, item_id=item_id)
        if quantity == 0:
            await session.delete(item)
        else:
            product = await session.scalar(
                sa.select(Product)
                .where(Product.product_id == item.product_id)
                .execution_options(populate_existing=True)
            )
            assert product is not None
            variants = await _variants_of(session, [product.product_id])
            variant = _variant_for(item.variant_id, variants[product.product_id])
            _refuse_unsold(product, variant)
            _refuse_over_stock(product, variant, quantity, 0)
            item.quantity = quantity
        await session.flush()
        return _cart(await _lines(session, user_id), ctx.settings.default_currency)


async def remove_item(
    *, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID, item_id: uuid.UUID
) -> CartPublic:
    """Remove one line of the user's cart."""
    async with session.begin():
        await _lock_cart(session, user_id)
        await session.delete(await _own_item(session, user_id=user_id, item_id=item_id))
        await session.flush()
        return _cart(await _lines(session, user_id), ctx.settings.default_currency)


async def clear(*, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID) -> CartPublic:
    """Empty the user's cart."""
    async with session.begin():
        await _lock_cart(session, user_id)
        await session.execute(sa.delete(CartItem).where(CartItem.user_id == user_id))
    return _cart([], ctx.settings.default_currency)


async def remove_ordered(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    items: list[tuple[uuid.UUID, uuid.UUID | None, int]],
) -> None:
    """Take ordered quantities out of the user's cart (a line reaching 0 goes away).

    Items are (product_id, variant_id, quantity); a line without a variant (an order placed by
    product) takes from the product's line when it has just one.
    """
    ordered: dict[tuple[uuid.UUID, uuid.UUID | None], int] = defaultdict(int)
    for product_id, variant_id, quantity in items:
        ordered[(product_id, variant_id)] += quantity
    await _lock_cart(session, user_id)
    lines = await _lines(session, user_id)
    for (product_id, variant_id), quantity in ordered.items():
        of_product = [ln for ln in lines if ln.item.product_id == product_id]
        if variant_id is not None:
            matching = [
                ln
                for ln in of_product
                if ln.item.variant_id == variant_id
                or (
                    ln.item.variant_id is None
                    and ln.variant is not None
                    and ln.variant.variant_id == variant_id
                )
            ]
        else:
            matching = of_product if len(of_product) == 1 else []
        item = matching[0].item if matching else None
        if item is None or quantity <= 0:
            continue
        if item.quantity <= quantity:
            await session.delete(item)
        else:
            item.quantity -= quantity
    await session.flush()


# ---------------------------------------------------------------- wishlist


def _entry(entry: WishlistEntry, product: Product, variant: Variant | None) -> WishlistEntryPublic:
    stock = _stock(product, variant)
    availability: Availability = (
        "unavailable" if not _sold(product, variant) else "out_of_stock" if stock <= 0 else "available"
    )
    return WishlistEntryPublic(
        id=entry.id,
        product_id=entry.product_id,
        variant_id=variant.variant_id if variant is not None else entry.variant_id,
        sku=variant.sku if variant is not None else None,
        title=variant.title if variant is not None else None,
        name=product.name,
        slug=product.slug,
        image=product.image,
        price=_price(product, variant),
        currency=product.currency,
        stock=stock,
        availability=availability,
        created_at=entry.created_at,
    )


async def get_wishlist(*, session: AsyncSession, user_id: uuid.UUID) -> WishlistPublic:
    """The user's wishlist, newest first, with current product data."""
    async with session.begin():
        rows = (
            await session.execute(
                sa.select(WishlistEntry, Product)
                .join(Product, Product.product_id == WishlistEntry.product_id)
                .where(WishlistEntry.user_id == user_id)
                .order_by(WishlistEntry.created_at.desc(), WishlistEntry.id)
            )
        ).all()
        variants = await _variants_of(session, (p.product_id for _, p in rows))
        items = [_entry(e, p, _variant_for(e.variant_id, variants[p.product_id])) for e, p in rows]
    return WishlistPublic(items=items, count=len(items), item_count=len(items))


async def add_to_wishlist(
    *,
    ctx: CartContext,
    session: AsyncSession,
    user_id: uuid.UUID,
    product_id: uuid.UUID,
    variant_id: uuid.UUID | None = None,
) -> tuple[WishlistEntryPublic, bool]:
    """Keep a product (one variant of it, or the product as a whole) for later; again returns the entry (False).

    A product with one variant is kept as that variant; one with several, without
    ``variant_id``, as the product (no variant chosen yet).
    """
    await readmodel.ensure_known(ctx=ctx, session=session, product_id=product_id)
    async with session.begin():
        product = await session.scalar(
            sa.select(Product)
            .where(Product.product_id == product_id)
            .execution_options(populate_existing=True)
        )
        assert product is not None
        variant = await _choose(session, product, variant_id, required=False)
        chosen = variant.variant_id if variant is not None else None
        same_variant: sa.ColumnElement[bool]
        if chosen is None:
            same_variant = WishlistEntry.variant_id.is_(None)
        elif variant_id is None:
            # the only variant: an entry from before variants (no variant named) is the same one
            same_variant = sa.or_(WishlistEntry.variant_id == chosen, WishlistEntry.variant_id.is_(None))
        else:
            same_variant = WishlistEntry.variant_id == chosen
        existing = await session.scalar(
            sa.select(WishlistEntry).where(
                WishlistEntry.user_id == user_id, WishlistEntry.product_id == product_id, same_variant
            )
        )
        if existing is not None:
            return _entry(existing, product, variant), False
        _refuse_unsold(product, variant)
        count = await session.scalar(
            sa.select(sa.func.count()).select_from(WishlistEntry).where(WishlistEntry.user_id == user_id)
        )
        if (count or 0) >= ctx.settings.max_wishlist_entries:
            raise Conflict(
                f"A wishlist holds at most {ctx.settings.max_wishlist_entries} products.",
                title="Wishlist full",
                type_="wishlist-full",
            )
        # a racing duplicate add lands on the unique constraint and returns the winner's entry
        inserted = await session.scalar(
            insert(WishlistEntry)
            .values(id=uuid.uuid4(), user_id=user_id, product_id=product_id, variant_id=chosen)
            .on_conflict_do_nothing()
            .returning(WishlistEntry.id)
        )
        entry = await session.scalar(
            sa.select(WishlistEntry)
            .where(
                WishlistEntry.user_id == user_id,
                WishlistEntry.product_id == product_id,
                WishlistEntry.variant_id == chosen
                if chosen is not None
                else WishlistEntry.variant_id.is_(None),
            )
            .execution_options(populate_existing=True)
        )
        assert entry is not None
        return _entry(entry, product, variant), inserted is not None


async def remove_from_wishlist(*, session: AsyncSession, user_id: uuid.UUID, entry_id: uuid.UUID) -> None:
    """Remove one of the user's wishlist entries."""
    async with session.begin():
        result = await session.execute(
            sa.delete(WishlistEntry)
            .where(WishlistEntry.id == entry_id, WishlistEntry.user_id == user_id)
            .returning(WishlistEntry.id)
        )
        if result.first() is None:
            raise NotFound(
                f"There is no entry {entry_id} in your wishlist.", title="Wishlist entry not found"
            )
