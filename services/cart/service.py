"""Business rules of carts and wishlists: keyword-only async functions raising DomainErrors.

Reads go through the product read-model only; catalog is asked (once) only about a
product the read-model has never seen. Every change of a user's cart runs under a
per-user transaction lock so two racing requests cannot both pass the limits.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import Conflict, NotFound
from services.cart import readmodel
from services.cart.context import CartContext
from services.cart.models import CartItem, Product, WishlistEntry
from services.cart.schemas import (
    MAX_QUANTITY,
    Availability,
    CartItemPublic,
    CartPublic,
    WishlistEntryPublic,
    WishlistPublic,
)


async def _lock_cart(session: AsyncSession, user_id: uuid.UUID) -> None:
    await session.execute(
        sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtextextended(f"cart:{user_id}", 0)))
    )


async def _lines(session: AsyncSession, user_id: uuid.UUID) -> list[tuple[CartItem, Product]]:
    rows = await session.execute(
        sa.select(CartItem, Product)
        .join(Product, Product.product_id == CartItem.product_id)
        .where(CartItem.user_id == user_id)
        .order_by(CartItem.created_at, CartItem.id)
        .execution_options(populate_existing=True)
    )
    return [(item, product) for item, product in rows.all()]


def _sold(product: Product) -> bool:
    return product.is_active and not product.deleted


def _availability(product: Product, quantity: int, currency: str) -> Availability:
    # a line whose product changed currency can no longer be bought in this cart's currency
    if not _sold(product) or product.currency != currency:
        return "unavailable"
    if product.stock <= 0:
        return "out_of_stock"
    if product.stock < quantity:
        return "insufficient_stock"
    return "available"


def _cart(lines: list[tuple[CartItem, Product]], default_currency: str) -> CartPublic:
    currency = lines[0][1].currency if lines else default_currency
    items = []
    for item, product in lines:
        items.append(
            CartItemPublic(
                id=item.id,
                product_id=item.product_id,
                name=product.name,
                image=product.image,
                unit_price=product.price,
                added_unit_price=item.added_unit_price,
                currency=product.currency,
                quantity=item.quantity,
                line_total=product.price * item.quantity,
                stock=product.stock,
                availability=_availability(product, item.quantity, currency),
            )
        )
    return CartPublic(
        items=items,
        count=len(items),
        item_count=sum(i.quantity for i in items),
        subtotal=sum(i.line_total for i in items if i.availability != "unavailable"),
        currency=currency,
    )


def _refuse_unsold(product: Product) -> None:
    if product.deleted:
        raise Conflict(
            f"'{product.name}' is no longer sold.",
            title="Product unavailable",
            type_="product-unavailable",
            product_id=str(product.product_id),
        )
    if not product.is_active:
        raise Conflict(
            f"'{product.name}' is not available right now.",
            title="Product unavailable",
            type_="product-unavailable",
            product_id=str(product.product_id),
        )


def _refuse_over_stock(product: Product, wanted: int, in_cart: int) -> None:
    if wanted > product.stock:
        if product.stock == 0:
            detail = f"'{product.name}' is out of stock."
        else:
            detail = f"Only {product.stock} of '{product.name}' are available" + (
                f" and your cart already holds {in_cart}." if in_cart else "."
            )
        raise Conflict(
            detail,
            title="Not enough stock",
            type_="insufficient-stock",
            product_id=str(product.product_id),
            available=product.stock,
            in_cart=in_cart,
        )


async def get_cart(*, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID) -> CartPublic:
    """The user's cart with current names, prices and availability."""
    async with session.begin():
        return _cart(await _lines(session, user_id), ctx.settings.default_currency)


async def add_item(
    *, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID, product_id: uuid.UUID, quantity: int
) -> tuple[CartPublic, bool]:
    """Add units of a product (a new line, or more of an existing one); True when a line was created."""
    settings = ctx.settings
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
        _refuse_unsold(product)
        existing = next((item for item, _ in lines if item.product_id == product_id), None)
        others = [p for item, p in lines if item.product_id != product_id]
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
                f"of '{product.name}', so you can add {MAX_QUANTITY - in_cart} more.",
                title="Quantity limit",
                type_="quantity-limit",
                max_quantity=MAX_QUANTITY,
                in_cart=in_cart,
            )
        _refuse_over_stock(product, wanted, in_cart)
        if existing is not None:
            existing.quantity = wanted
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
                    quantity=quantity,
                    added_unit_price=product.price,
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
            _refuse_unsold(product)
            _refuse_over_stock(product, quantity, 0)
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
    session: AsyncSession, *, user_id: uuid.UUID, items: list[tuple[uuid.UUID, int]]
) -> None:
    """Take ordered quantities out of the user's cart (a line reaching 0 goes away)."""
    ordered: dict[uuid.UUID, int] = defaultdict(int)
    for product_id, quantity in items:
        ordered[product_id] += quantity
    await _lock_cart(session, user_id)
    for product_id, quantity in ordered.items():
        item = await session.scalar(
            sa.select(CartItem)
            .where(CartItem.user_id == user_id, CartItem.product_id == product_id)
            .execution_options(populate_existing=True)
        )
        if item is None or quantity <= 0:
            continue
        if item.quantity <= quantity:
            await session.delete(item)
        else:
            item.quantity -= quantity
    await session.flush()


# ---------------------------------------------------------------- wishlist


def _entry(entry: WishlistEntry, product: Product) -> WishlistEntryPublic:
    availability: Availability = (
        "unavailable" if not _sold(product) else "out_of_stock" if product.stock <= 0 else "available"
    )
    return WishlistEntryPublic(
        id=entry.id,
        product_id=entry.product_id,
        name=product.name,
        slug=product.slug,
        image=product.image,
        price=product.price,
        currency=product.currency,
        stock=product.stock,
        availability=availability,
        created_at=entry.created_at,
    )


async def get_wishlist(*, session: AsyncSession, user_id: uuid.UUID) -> WishlistPublic:
    """The user's wishlist, newest first, with current product data."""
    async with session.begin():
        rows = await session.execute(
            sa.select(WishlistEntry, Product)
            .join(Product, Product.product_id == WishlistEntry.product_id)
            .where(WishlistEntry.user_id == user_id)
            .order_by(WishlistEntry.created_at.desc(), WishlistEntry.id)
        )
        items = [_entry(e, p) for e, p in rows.all()]
    return WishlistPublic(items=items, count=len(items), item_count=len(items))


async def add_to_wishlist(
    *, ctx: CartContext, session: AsyncSession, user_id: uuid.UUID, product_id: uuid.UUID
) -> tuple[WishlistEntryPublic, bool]:
    """Keep a product for later; adding it again returns the existing entry (False)."""
    await readmodel.ensure_known(ctx=ctx, session=session, product_id=product_id)
    async with session.begin():
        product = await session.scalar(
            sa.select(Product)
            .where(Product.product_id == product_id)
            .execution_options(populate_existing=True)
        )
        assert product is not None
        existing = await session.scalar(
            sa.select(WishlistEntry).where(
                WishlistEntry.user_id == user_id, WishlistEntry.product_id == product_id
            )
        )
        if existing is not None:
            return _entry(existing, product), False
        _refuse_unsold(product)
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
            .values(id=uuid.uuid4(), user_id=user_id, product_id=product_id)
            .on_conflict_do_nothing(index_elements=["user_id", "product_id"])
            .returning(WishlistEntry.id)
        )
        entry = await session.scalar(
            sa.select(WishlistEntry)
            .where(WishlistEntry.user_id == user_id, WishlistEntry.product_id == product_id)
            .execution_options(populate_existing=True)
        )
        assert entry is not None
        return _entry(entry, product), inserted is not None


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
