"""Routes of pricing: parse, check who calls, hand over to service.py / quotes.py, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi.encoders import jsonable_encoder
from starlette.responses import JSONResponse

from libs.common.auth import AdminUser, InternalCaller
from libs.common.db import SessionDep
from libs.common.errors import problem_doc
from services.pricing import quotes
from services.pricing import service as pricing
from services.pricing.context import Ctx
from services.pricing.schemas import (
    Country,
    Page,
    PromotionCreate,
    PromotionPublic,
    PromotionReplace,
    PromotionUpdate,
    PromotionUsagePublic,
    QuoteAnswer,
    QuoteRequest,
    Region,
    ShippingMethodPublic,
    ShippingZoneCreate,
    ShippingZonePublic,
    ShippingZoneReplace,
    ShippingZoneUpdate,
    TaxRateCreate,
    TaxRatePublic,
    TaxRateReplace,
    TaxRateUpdate,
)

router = APIRouter(tags=["pricing"])
admin_router = APIRouter(prefix="/admin", tags=["admin: pricing"])
internal_router = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)

PageNo = Annotated[int, Query(ge=1, le=100_000)]
PageSize = Annotated[int, Query(ge=1, le=100)]


def _json(body: Any, status: int = 200) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), status_code=status)


# ---- public -------------------------------------------------------------------------------------


@router.get("/shipping-methods", responses={200: {"model": list[ShippingMethodPublic]}})
async def shipping_methods(
    session: SessionDep,
    country: Annotated[Country, Query()],
    region: Annotated[Region | None, Query()] = None,
    postal_code: Annotated[str | None, Query(max_length=20)] = None,
) -> Response:
    """The shipping methods that deliver to an address, cheapest first."""
    methods = await pricing.methods_for(
        session=session, country=country, region=region, postal_code=postal_code
    )
    return _json([pricing.method_wire(m) for m in methods])


# ---- admin: promotions --------------------------------------------------------------------------


@admin_router.get("/promotions", responses={200: {"model": Page[PromotionPublic]}})
async def list_promotions(
    _: AdminUser,
    session: SessionDep,
    page: PageNo = 1,
    page_size: PageSize = 20,
    q: Annotated[str | None, Query(max_length=200)] = None,
    kind: Literal["automatic", "coupon"] | None = None,
    is_active: bool | None = None,
) -> Response:
    """Promotions and coupons with how often each is used, newest first."""
    return _json(
        await pricing.list_promotions(
            session=session, page=page, page_size=page_size, q=q, kind=kind, is_active=is_active
        )
    )


@admin_router.post(
    "/promotions",
    status_code=201,
    responses={201: {"model": PromotionPublic}, 409: problem_doc("The code is taken")},
)
async def create_promotion(body: PromotionCreate, _: AdminUser, session: SessionDep, ctx: Ctx) -> Response:
    """Create an automatic promotion, or a coupon when `code` is given."""
    return _json(
        await pricing.create_promotion(
            session=session, data=body, default_currency=ctx.settings.default_currency
        ),
        201,
    )


@admin_router.get("/promotions/{promotion_id}", responses={200: {"model": PromotionPublic}})
async def get_promotion(promotion_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """One promotion with how often it is used."""
    return _json(await pricing.get_promotion(session=session, promotion_id=promotion_id))


@admin_router.put("/promotions/{promotion_id}", responses={200: {"model": PromotionPublic}})
async def replace_promotion(
    promotion_id: uuid.UUID, body: PromotionReplace, _: AdminUser, session: SessionDep, ctx: Ctx
) -> Response:
    """Replace a promotion (orders already placed keep what they were charged)."""
    return _json(
        await pricing.update_promotion(
            session=session,
            promotion_id=promotion_id,
            data=body,
            replace=True,
            default_currency=ctx.settings.default_currency,
        )
    )


@admin_router.patch("/promotions/{promotion_id}", responses={200: {"model": PromotionPublic}})
async def update_promotion(
    promotion_id: uuid.UUID, body: PromotionUpdate, _: AdminUser, session: SessionDep, ctx: Ctx
) -> Response:
    """Change some of a promotion's fields (`rules` and `action` are replaced whole)."""
    return _json(
        await pricing.update_promotion(
            session=session,
            promotion_id=promotion_id,
            data=body,
            replace=False,
            default_currency=ctx.settings.default_currency,
        )
    )


@admin_router.delete("/promotions/{promotion_id}", status_code=204)
async def delete_promotion(promotion_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """Delete a promotion: it stops applying; its uses stay as order history and its code is free again."""
    await pricing.delete_promotion(session=session, promotion_id=promotion_id)
    return Response(status_code=204)


@admin_router.get("/promotions/{promotion_id}/usages", responses={200: {"model": Page[PromotionUsagePublic]}})
async def list_promotion_usages(
    promotion_id: uuid.UUID, _: AdminUser, session: SessionDep, page: PageNo = 1, page_size: PageSize = 20
) -> Response:
    """The orders that used a promotion, newest first (given-back uses show `released_at`)."""
    return _json(
        await pricing.list_usages(session=session, promotion_id=promotion_id, page=page, page_size=page_size)
    )


# ---- admin: shipping zones ----------------------------------------------------------------------


@admin_router.get("/shipping-zones", responses={200: {"model": list[ShippingZonePublic]}})
async def list_zones(
    _: AdminUser, session: SessionDep, country: Annotated[Country | None, Query()] = None
) -> Response:
    """Every shipping zone with its methods (or those reaching `country`)."""
    return _json(await pricing.list_zones(session=session, country=country))


@admin_router.post("/shipping-zones", status_code=201, responses={201: {"model": ShippingZonePublic}})
async def create_zone(body: ShippingZoneCreate, _: AdminUser, session: SessionDep) -> Response:
    """Create a shipping zone with its methods."""
    return _json(await pricing.create_zone(session=session, data=body), 201)


@admin_router.get("/shipping-zones/{zone_id}", responses={200: {"model": ShippingZonePublic}})
async def get_zone(zone_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    return _json(await pricing.get_zone(session=session, zone_id=zone_id))


@admin_router.put("/shipping-zones/{zone_id}", responses={200: {"model": ShippingZonePublic}})
async def replace_zone(
    zone_id: uuid.UUID, body: ShippingZoneReplace, _: AdminUser, session: SessionDep
) -> Response:
    """Replace a zone; methods sent with their id are kept, others added, the rest removed."""
    return _json(await pricing.update_zone(session=session, zone_id=zone_id, data=body, replace=True))


@admin_router.patch("/shipping-zones/{zone_id}", responses={200: {"model": ShippingZonePublic}})
async def update_zone(
    zone_id: uuid.UUID, body: ShippingZoneUpdate, _: AdminUser, session: SessionDep
) -> Response:
    """Change some of a zone's fields; `methods`, when given, is the zone's whole list."""
    return _json(await pricing.update_zone(session=session, zone_id=zone_id, data=body, replace=False))


@admin_router.delete("/shipping-zones/{zone_id}", status_code=204)
async def delete_zone(zone_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """Delete a zone and its methods."""
    await pricing.delete_zone(session=session, zone_id=zone_id)
    return Response(status_code=204)


# ---- admin: tax rates ---------------------------------------------------------------------------


@admin_router.get("/tax-rates", responses={200: {"model": list[TaxRatePublic]}})
async def list_rates(
    _: AdminUser, session: SessionDep, country: Annotated[Country | None, Query()] = None
) -> Response:
    """Every tax rate (or a country's), by country and region."""
    return _json(await pricing.list_rates(session=session, country=country))


@admin_router.post(
    "/tax-rates",
    status_code=201,
    responses={201: {"model": TaxRatePublic}, 409: problem_doc("A rate of this name exists here")},
)
async def create_rate(body: TaxRateCreate, _: AdminUser, session: SessionDep) -> Response:
    """Create a tax rate for a country, or for one of its regions (region rates add to the country's)."""
    return _json(await pricing.create_rate(session=session, data=body), 201)


@admin_router.get("/tax-rates/{rate_id}", responses={200: {"model": TaxRatePublic}})
async def get_rate(rate_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    return _json(await pricing.get_rate(session=session, rate_id=rate_id))


@admin_router.put("/tax-rates/{rate_id}", responses={200: {"model": TaxRatePublic}})
async def replace_rate(
    rate_id: uuid.UUID, body: TaxRateReplace, _: AdminUser, session: SessionDep
) -> Response:
    return _json(await pricing.update_rate(session=session, rate_id=rate_id, data=body, replace=True))


@admin_router.patch("/tax-rates/{rate_id}", responses={200: {"model": TaxRatePublic}})
async def update_rate(rate_id: uuid.UUID, body: TaxRateUpdate, _: AdminUser, session: SessionDep) -> Response:
    return _json(await pricing.update_rate(session=session, rate_id=rate_id, data=body, replace=False))


@admin_router.delete("/tax-rates/{rate_id}", status_code=204)
async def delete_rate(rate_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    await pricing.delete_rate(session=session, rate_id=rate_id)
    return Response(status_code=204)


# ---- internal -----------------------------------------------------------------------------------


@internal_router.post("/quotes", responses={200: {"model": QuoteAnswer}})
async def quote(body: QuoteRequest, _: InternalCaller, session: SessionDep, ctx: Ctx) -> Response:
    """The breakdown for lines and an address; with `order_id` the order's promotions are claimed
    (idempotent: the same order again gets the same answer)."""
    return _json(
        await quotes.quote(session=session, req=body, prices_include_tax=ctx.settings.prices_include_tax)
    )


@internal_router.post("/orders/{order_id}/release")
async def release(order_id: uuid.UUID, _: InternalCaller, session: SessionDep) -> Response:
    """Give back the promotions an order used; idempotent."""
    return _json(await quotes.release(session=session, order_id=order_id))
