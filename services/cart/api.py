"""Routes of the cart service: parse, call the service, shape the answer."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Response

from libs.common.auth import CurrentUser, InternalCaller
from libs.common.db import SessionDep
from libs.common.errors import problem_doc
from services.cart import checkout
from services.cart import service as cart_service
from services.cart.context import Ctx
from services.cart.schemas import (
    CartItemCreate,
    CartItemUpdate,
    CartPublic,
    CheckoutQuote,
    CheckoutQuoteCreate,
    WishlistEntryCreate,
    WishlistEntryPublic,
    WishlistPublic,
)

_problems: dict[int | str, dict[str, object]] = {
    s: problem_doc(d)
    for s, d in {
        401: "not signed in",
        404: "unknown product or item",
        409: "refused (stock, limit, currency)",
        422: "invalid input",
    }.items()
}
router = APIRouter(tags=["cart"], responses=_problems)
internal_router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)


# the two reads of a whole cart answer with its JSON straight from the rows (services/cart/view.py);
# the model stays declared for the schema, and FastAPI passes a Response through unvalidated
@router.get("/cart", response_model=CartPublic)
async def get_cart(user: CurrentUser, ctx: Ctx) -> Response:
    """The caller's cart with current names, prices and availability."""
    return _json(await cart_service.cart_json(ctx=ctx, user_id=user.user_id))


@router.post(
    "/cart", status_code=201, responses={200: {"model": CartPublic, "description": "quantity increased"}}
)
async def add_to_cart(
    body: CartItemCreate, user: CurrentUser, session: SessionDep, ctx: Ctx, response: Response
) -> CartPublic:
    """Add a product (201, new line) or more of one already in the cart (200); returns the cart."""
    cart, created = await cart_service.add_item(
        ctx=ctx,
        session=session,
        user_id=user.user_id,
        product_id=body.product_id,
        variant_id=body.variant_id,
        quantity=body.quantity,
    )
    response.status_code = 201 if created else 200
    return cart


# declared before /cart/{item_id}: "clear" must never be read as an item id
@router.delete("/cart/clear")
async def clear_cart(user: CurrentUser, session: SessionDep, ctx: Ctx) -> CartPublic:
    """Empty the caller's cart; returns the (empty) cart."""
    return await cart_service.clear(ctx=ctx, session=session, user_id=user.user_id)


@router.put("/cart/{item_id}")
async def set_cart_item_quantity(
    item_id: uuid.UUID, body: CartItemUpdate, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> CartPublic:
    """Set a line's quantity (0 removes it); returns the cart."""
    return await cart_service.set_quantity(
        ctx=ctx, session=session, user_id=user.user_id, item_id=item_id, quantity=body.quantity
    )


@router.delete("/cart/{item_id}")
async def remove_cart_item(
    item_id: uuid.UUID, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> CartPublic:
    """Remove one line; returns the cart."""
    return await cart_service.remove_item(ctx=ctx, session=session, user_id=user.user_id, item_id=item_id)


@router.get("/wishlist")
async def get_wishlist(user: CurrentUser, session: SessionDep) -> WishlistPublic:
    """The caller's wishlist, newest first, with current product data."""
    return await cart_service.get_wishlist(session=session, user_id=user.user_id)


@router.post(
    "/wishlist",
    status_code=201,
    responses={200: {"model": WishlistEntryPublic, "description": "already in the wishlist"}},
)
async def add_to_wishlist(
    body: WishlistEntryCreate, user: CurrentUser, session: SessionDep, ctx: Ctx, response: Response
) -> WishlistEntryPublic:
    """Keep a product or one variant for later (201); the same again returns the existing entry (200)."""
    entry, created = await cart_service.add_to_wishlist(
        ctx=ctx, session=session, user_id=user.user_id, product_id=body.product_id, variant_id=body.variant_id
    )
    response.status_code = 201 if created else 200
    return entry


@router.delete("/wishlist/{entry_id}", status_code=204)
async def remove_from_wishlist(entry_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    """Remove one wishlist entry."""
    await cart_service.remove_from_wishlist(session=session, user_id=user.user_id, entry_id=entry_id)
    return Response(status_code=204)


@router.post(
    "/checkout/quote",
    responses={
        422: problem_doc(
            "empty cart, no shipping there, or the coupon does "
            "not apply (`reason`, `shortfall`, and the `quote` without it)"
        ),
        503: problem_doc("pricing unavailable"),
    },
)
async def checkout_quote(
    body: CheckoutQuoteCreate, user: CurrentUser, session: SessionDep, ctx: Ctx
) -> CheckoutQuote:
    """The caller's cart priced for an address: shipping, tax and promotions (the order will charge this)."""
    return CheckoutQuote.model_validate(
        await checkout.quote(ctx=ctx, session=session, user_id=user.user_id, data=body)
    )


@internal_router.get("/carts/{user_id}", response_model=CartPublic)
async def internal_cart(user_id: uuid.UUID, _: InternalCaller, ctx: Ctx) -> Response:
    """A user's cart, for the orders service."""
    return _json(await cart_service.cart_json(ctx=ctx, user_id=user_id))


def _json(body: bytes) -> Response:
    return Response(body, media_type="application/json")
