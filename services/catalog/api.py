"""Routes of the catalog: public browsing (cached), admin management, internal reservations."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from starlette.datastructures import QueryParams
from starlette.responses import FileResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from libs.common.auth import AdminUser, InternalCaller, OptionalUser
from libs.common.db import SessionDep
from libs.common.errors import NotFound
from libs.common.headers import etag_matches
from libs.common.textcheck import query_fields
from services.catalog import browse, images, media, reservations, stocksettings, trash
from services.catalog import service as catalog
from services.catalog.cache import ResponseCache
from services.catalog.context import CatalogContext, Ctx
from services.catalog.schemas import (
    CategoryCreate,
    CategoryPublic,
    CategoryReplace,
    CategoryUpdate,
    ImagePublic,
    ImageUpdate,
    LowStockPage,
    ProductCreate,
    ProductPage,
    ProductPublic,
    ProductReplace,
    ProductUpdate,
    ReservationCreate,
    ReservationPublic,
    SortKey,
    StockChange,
    StockSettings,
    StockSettingsUpdate,
    VariantIn,
    VariantPublic,
    VariantUpdate,
)


async def _clear_cached_reads(ctx: Ctx) -> AsyncIterator[None]:
    """After a write route succeeded (an error skips this), cached public reads are stale."""
    yield
    ctx.state.response_cache.clear()


router = APIRouter(tags=["catalog"])
admin_router = APIRouter(prefix="/admin", tags=["catalog admin"], dependencies=[Depends(_clear_cached_reads)])
internal_router = APIRouter(
    prefix="/internal",
    tags=["internal"],
    include_in_schema=False,
    dependencies=[Depends(_clear_cached_reads)],
)


def _dumps(payload: Any) -> bytes:
    # asyncpg hands back its own UUID subclass (orjson needs ``default``); "Z" like pydantic and the events
    return orjson.dumps(payload, default=str, option=orjson.OPT_UTC_Z)


def _json(payload: Any, status_code: int = 200) -> Response:
    return Response(_dumps(payload), status_code=status_code, media_type="application/json")


def _conditional(request: Request, body: bytes, etag: str, *, public: bool) -> Response:
    ctx: CatalogContext = request.app.state.ctx
    return _answer(
        body, etag, request.headers.get("if-none-match"), ctx.settings.catalog_cache_max_age, public
    )


def _answer(body: bytes, etag: str, if_none_match: str | None, max_age: int, public: bool) -> Response:
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}" if public else "private, no-store",
        "Vary": "Authorization",
    }
    if if_none_match and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    return Response(body, media_type="application/json", headers=headers)


def _cache_key(scope: Scope) -> str:
    return f"{scope['path']}?{scope['query_string'].decode('latin-1')}"


def _etag(body: bytes) -> str:
    return '"' + hashlib.blake2b(body, digest_size=16).hexdigest() + '"'


async def _cached_or_made(
    cache: ResponseCache, scope: Scope, produce: Callable[[], Awaitable[Any]]
) -> tuple[bytes, str]:
    """A public answer's body and ETag: from the micro-cache, or made and kept there."""
    key = _cache_key(scope)
    hit = cache.get(key)
    if hit is not None:
        return hit.body, hit.etag
    generation = cache.generation
    body = _dumps(await produce())
    etag = _etag(body)
    cache.put(key, body, etag, generation=generation, route=scope.get("route"))
    return body, etag


async def _public(request: Request, produce: Callable[[], Awaitable[Any]]) -> Response:
    """A public JSON read: micro-cached, with a content ETag; a matching If-None-Match gets a 304."""
    ctx: CatalogContext = request.app.state.ctx
    body, etag = await _cached_or_made(ctx.state.response_cache, request.scope, produce)
    return _conditional(request, body, etag, public=True)


class CachedReads:
    """A guest's public read still in the micro-cache is answered here, before routing.

    Routing, validating a dozen query parameters and solving dependencies were about two
    thirds of a cached answer's CPU. The cache key is the exact path and query a route
    validated and answered, so the answer is the route's own; a request with a token goes
    the whole way (an admin sees hidden products, a bad token is still a 401).
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        ctx: CatalogContext | None = getattr(scope["app"].state, "ctx", None) if "app" in scope else None
        if ctx is not None and scope["type"] == "http" and scope["method"] == "GET":
            hit = ctx.state.response_cache.get(_cache_key(scope))
            if hit is not None:
                if_none_match = None
                for name, value in scope["headers"]:
                    if name == b"authorization":
                        break
                    if name == b"if-none-match":
                        if_none_match = value.decode("latin-1")
                else:
                    scope["route"] = hit.route  # the metrics' label, as if routed
                    max_age = ctx.settings.catalog_cache_max_age
                    await _answer(hit.body, hit.etag, if_none_match, max_age, True)(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class GuestBrowse:
    """A guest's ``GET /products`` whose parameters are plainly valid, answered before routing.

    On an uncached browse, routing, validating ten query parameters (a pydantic call each) and
    solving the route's dependencies were about a third of the catalog's CPU (bench/cost.py
    --profile). The parameters are read as the route reads them (browse.plain_fields) and the
    answer is made as the route makes it. Anything else goes the whole way: a parameter the
    route must judge (its 422 names the field), a token (as in CachedReads), a body or text
    that BodyGuard judges. An error is answered by the app's own exception handlers, as inside
    routing; one without a handler propagates as it would from the route.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # the route as routing would name it in the scope: the metrics label the answer by it
        self.route = next(r for r in router.routes if getattr(r, "endpoint", None) is list_products)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] == "GET"
            and scope["path"] == "/products"
            and getattr(scope["app"].state, "ctx", None) is not None
        ):
            if_none_match: str | None = None
            for name, value in scope["headers"]:
                if name in (b"authorization", b"transfer-encoding") or (
                    name == b"content-length" and value != b"0"
                ):
                    break
                if name == b"if-none-match" and if_none_match is None:
                    if_none_match = value.decode("latin-1")
            else:
                query_string: bytes = scope["query_string"]
                if not query_fields(query_string):
                    params = QueryParams(query_string)
                    fields = browse.plain_fields(params)
                    if fields is not None:
                        await self.browse(scope, receive, send, params, fields, if_none_match)
                        return
        await self.app(scope, receive, send)

    async def browse(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        params: QueryParams,
        fields: dict[str, Any],
        if_none_match: str | None,
    ) -> None:
        app = scope["app"]
        ctx: CatalogContext = app.state.ctx
        scope["route"] = self.route
        cache = ctx.state.response_cache
        try:
            query = browse.ProductQuery(options=browse.option_filters(params.multi_items()), **fields)

            async def produce() -> dict[str, Any]:
                async with ctx.state.read_pool.acquire() as conn:
                    return await browse.list_products(conn=conn, query=query, cache=cache)

            body, etag = await _cached_or_made(cache, scope, produce)
        except Exception as exc:
            handler = _exception_handler(app, exc)
            if handler is None:
                raise
            response = await handler(Request(scope, receive), exc)
        else:
            response = _answer(body, etag, if_none_match, ctx.settings.catalog_cache_max_age, True)
        await response(scope, receive, send)


def _exception_handler(app: Any, exc: Exception) -> Callable[..., Awaitable[Response]] | None:
    """The handler the app's ExceptionMiddleware would pick (Exception's own is the outermost layer's)."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        handler = app.exception_handlers.get(cls)
        if handler is not None:
            return cast(Callable[..., Awaitable[Response]], handler)
    return None


# ---------------------------------------------------------------- public


@router.get("/categories", responses={200: {"model": list[CategoryPublic]}})
async def list_categories(request: Request, session: SessionDep, flat: bool = False) -> Response:
    """Every category with its number of active products (sub-categories included): a tree or flat."""
    return await _public(request, lambda: catalog.list_categories(session=session, flat=flat))


@router.get("/categories/{id_or_slug}", responses={200: {"model": CategoryPublic}})
async def get_category(id_or_slug: str, request: Request, session: SessionDep) -> Response:
    """One category by id or slug."""
    return await _public(request, lambda: catalog.get_category(session=session, key=id_or_slug))


@router.get("/products", responses={200: {"model": ProductPage}})
async def list_products(
    request: Request,
    ctx: Ctx,
    category: Annotated[
        str | None, Query(max_length=200, description="id or slug; includes sub-categories")
    ] = None,
    price_min: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,  # bigint: larger cannot be queried
    price_max: Annotated[int | None, Query(ge=0, le=2**63 - 1)] = None,
    in_stock: bool | None = None,
    q: Annotated[str | None, Query(max_length=10_000, description="full-text search")] = None,
    sort: Annotated[SortKey | None, Query(description="default: relevance with q, else newest")] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    facets: Annotated[
        bool,
        Query(description="also count the filtered set per category and option value, with its price range"),
    ] = False,
) -> Response:
    """Browse visible products: filters (``option.<Name>=<value>``, repeatable), full-text search,
    sorting, pagination, and facets of the filtered set."""
    query = browse.ProductQuery(
        options=browse.option_filters(request.query_params.multi_items()),
        facets=facets,
        category=category,
        price_min=price_min,
        price_max=price_max,
        in_stock=in_stock,
        q=q,
        sort=sort,
        page=page,
        page_size=page_size,
    )

    async def produce() -> dict[str, Any]:
        async with ctx.state.read_pool.acquire() as conn:
            return await browse.list_products(conn=conn, query=query, cache=ctx.state.response_cache)

    return await _public(request, produce)


@router.get("/products/{id_or_slug}", responses={200: {"model": ProductPublic}})
async def get_product(id_or_slug: str, request: Request, session: SessionDep, user: OptionalUser) -> Response:
    """One product by id or slug; admins also see inactive and deleted ones."""
    if user is not None and user.is_admin:
        body = _dumps(await catalog.get_product(session=session, key=id_or_slug, include_hidden=True))
        return _conditional(request, body, _etag(body), public=False)
    return await _public(request, lambda: catalog.get_product(session=session, key=id_or_slug))


# ---------------------------------------------------------------- admin


@admin_router.post("/categories", status_code=201, responses={201: {"model": CategoryPublic}})
async def create_category(body: CategoryCreate, _: AdminUser, session: SessionDep) -> Response:
    """Create a category."""
    return _json(await catalog.create_category(session=session, data=body), 201)


@admin_router.put("/categories/{category_id}", responses={200: {"model": CategoryPublic}})
async def replace_category(
    category_id: uuid.UUID, body: CategoryReplace, _: AdminUser, session: SessionDep
) -> Response:
    """Replace a category's fields."""
    return _json(
        await catalog.update_category(session=session, category_id=category_id, data=body, replace=True)
    )


@admin_router.patch("/categories/{category_id}", responses={200: {"model": CategoryPublic}})
async def update_category(
    category_id: uuid.UUID, body: CategoryUpdate, _: AdminUser, session: SessionDep
) -> Response:
    """Change some of a category's fields."""
    return _json(
        await catalog.update_category(session=session, category_id=category_id, data=body, replace=False)
    )


@admin_router.delete("/categories/{category_id}", status_code=204)
async def delete_category(category_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """Delete an empty category (409 while it has products or sub-categories)."""
    await catalog.delete_category(session=session, category_id=category_id)
    return Response(status_code=204)


@admin_router.get("/products/{product_id}", responses={200: {"model": ProductPublic}})
async def admin_get_product(product_id: uuid.UUID, _: AdminUser, session: SessionDep) -> Response:
    """One product, inactive or deleted included."""
    return _json(await catalog.get_product(session=session, key=str(product_id), include_hidden=True))


@admin_router.post("/products", status_code=201, responses={201: {"model": ProductPublic}})
async def create_product(body: ProductCreate, _: AdminUser, session: SessionDep, ctx: Ctx) -> Response:
    """Create a product."""
    return _json(
        await catalog.create_product(
            session=session, data=body, default_currency=ctx.settings.catalog_default_currency
        ),
        201,
    )


@admin_router.put("/products/{product_id}", responses={200: {"model": ProductPublic}})
async def replace_product(
    product_id: uuid.UUID, body: ProductReplace, _: AdminUser, session: SessionDep, ctx: Ctx
) -> Response:
    """Replace a product's fields."""
    return _json(
        await catalog.update_product(
            session=session,
            product_id=product_id,
            data=body,
            replace=True,
            default_currency=ctx.settings.catalog_default_currency,
        )
    )


@admin_router.patch("/products/{product_id}", responses={200: {"model": ProductPublic}})
async def update_product(
    product_id: uuid.UUID, body: ProductUpdate, _: AdminUser, session: SessionDep, ctx: Ctx
) -> Response:
    """Change some of a product's fields (``stock`` is absolute here)."""
    return _json(
        await catalog.update_product(
            session=session,
            product_id=product_id,
            data=body,
            replace=False,
            default_currency=ctx.settings.catalog_default_currency,
        )
    )


@admin_router.delete("/products/{product_id}", status_code=204)
async def delete_product(product_id: uuid.UUID, _: AdminUser, session: SessionDep, ctx: Ctx) -> Response:
    """Soft-delete a product: hidden from browsing, kept for order history; its images are deleted."""
    gone = await catalog.delete_product(session=session, product_id=product_id)
    await trash.purge_now(session, ctx.state.media, gone)
    return Response(status_code=204)


@admin_router.post("/products/{product_id}/stock", responses={200: {"model": ProductPublic}})
async def change_stock(
    product_id: uuid.UUID, body: StockChange, _: AdminUser, session: SessionDep
) -> Response:
    """Add (or with a negative delta, remove) a variant's stock (the only one's if none named); never below zero."""
    return _json(
        await catalog.change_stock(
            session=session, product_id=product_id, delta=body.delta, variant_id=body.variant_id
        )
    )


@admin_router.get("/settings/stock", responses={200: {"model": StockSettings}})
async def get_stock_settings(_: AdminUser, session: SessionDep) -> Response:
    """The shop's stock settings: the low-stock threshold."""
    return _json((await stocksettings.get_settings(session=session)).model_dump(mode="json"))


@admin_router.patch("/settings/stock", responses={200: {"model": StockSettings}})
async def update_stock_settings(body: StockSettingsUpdate, admin: AdminUser, session: SessionDep) -> Response:
    """Set the low-stock threshold for every admin; every open console hears it (settings.stock_updated)."""
    settings = await stocksettings.update_settings(session=session, admin_id=admin.user_id, data=body)
    return _json(settings.model_dump(mode="json"))


@admin_router.get("/low-stock", responses={200: {"model": LowStockPage}})
async def list_low_stock(
    _: AdminUser,
    session: SessionDep,
    at_most: Annotated[
        int | None, Query(ge=0, le=1_000_000, description="default: the shop's threshold")
    ] = None,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Response:
    """Live variants of visible products at or below the threshold, fewest units first."""
    found = await stocksettings.low_stock(session=session, at_most=at_most, page=page, page_size=page_size)
    return _json(found.model_dump(mode="json"))


@admin_router.post(
    "/products/{product_id}/variants", status_code=201, responses={201: {"model": VariantPublic}}
)
async def add_variant(product_id: uuid.UUID, body: VariantIn, _: AdminUser, session: SessionDep) -> Response:
    """Add a variant (a new size, a new colour); a new value joins its option's values."""
    return _json(await catalog.add_variant(session=session, product_id=product_id, data=body), 201)


@admin_router.patch("/products/{product_id}/variants/{variant_id}", responses={200: {"model": VariantPublic}})
async def update_variant(
    product_id: uuid.UUID, variant_id: uuid.UUID, body: VariantUpdate, _: AdminUser, session: SessionDep
) -> Response:
    """Change one variant: price, compare-at price, stock (absolute), SKU, active flag or options."""
    return _json(
        await catalog.update_variant(session=session, product_id=product_id, variant_id=variant_id, data=body)
    )


@admin_router.delete("/products/{product_id}/variants/{variant_id}", status_code=204)
async def retire_variant(
    product_id: uuid.UUID, variant_id: uuid.UUID, _: AdminUser, session: SessionDep
) -> Response:
    """Retire a variant: no longer sold, kept for order history (the last one cannot go)."""
    await catalog.retire_variant(session=session, product_id=product_id, variant_id=variant_id)
    return Response(status_code=204)


@router.get(
    "/media/{key:path}",
    responses={200: {"content": {t: {} for t in media.CONTENT_TYPES.values()}}, 304: {}},
)
async def get_media(key: str, request: Request, ctx: Ctx) -> Response:
    """A product image (original or thumbnail), from a local directory or the bucket."""
    store = ctx.state.media
    headers = {"Cache-Control": media.IMMUTABLE, "X-Content-Type-Options": "nosniff"}
    inm = request.headers.get("if-none-match")
    path = store.local_file(key)
    if path is not None:
        stat = path.stat()
        # keys are never reused, so size and time of writing tell one file from any other
        headers["ETag"] = f'"{stat.st_size:x}-{stat.st_mtime_ns:x}"'
        if inm and etag_matches(inm, headers["ETag"]):
            return Response(status_code=304, headers=headers)
        content_type = media.CONTENT_TYPES[path.suffix.removeprefix(".")]
        return FileResponse(path, media_type=content_type, headers=headers, stat_result=stat)
    stored = await store.read(key)
    if stored is None:
        raise NotFound("No such image.")
    headers["ETag"] = stored.etag
    if inm and etag_matches(inm, stored.etag):
        return Response(status_code=304, headers=headers)
    return Response(stored.data, media_type=stored.content_type, headers=headers)


# HEAD too (a browser or CDN checking an image), documented once under GET
router.add_api_route("/media/{key:path}", get_media, methods=["HEAD"], include_in_schema=False)


@admin_router.post("/products/{product_id}/images", status_code=201, responses={201: {"model": ImagePublic}})
async def upload_image(
    product_id: uuid.UUID,
    _: AdminUser,
    session: SessionDep,
    ctx: Ctx,
    file: Annotated[UploadFile, File(description="JPEG, PNG or WebP; the type is read from the bytes")],
    alt: Annotated[str, Form(max_length=500)] = "",
) -> Response:
    """Add an image (multipart): re-encoded without metadata, two thumbnails, stored in object storage."""
    s = ctx.settings
    data = await file.read(s.media_max_bytes + 1)
    return _json(
        await images.upload(
            session=session,
            store=ctx.state.media,
            product_id=product_id,
            data=data,
            alt=alt,
            max_bytes=s.media_max_bytes,
            max_pixels=s.media_max_pixels,
        ),
        201,
    )


@admin_router.patch("/products/{product_id}/images/{image_id}", responses={200: {"model": ImagePublic}})
async def update_image(
    product_id: uuid.UUID, image_id: uuid.UUID, body: ImageUpdate, _: AdminUser, session: SessionDep
) -> Response:
    """Change an image's alt text, position or the variant it shows."""
    return _json(await images.update(session=session, product_id=product_id, image_id=image_id, data=body))


@admin_router.delete("/products/{product_id}/images/{image_id}", status_code=204)
async def delete_image(
    product_id: uuid.UUID, image_id: uuid.UUID, _: AdminUser, session: SessionDep, ctx: Ctx
) -> Response:
    """Delete an image and its bytes."""
    await images.delete(session=session, store=ctx.state.media, product_id=product_id, image_id=image_id)
    return Response(status_code=204)


# ---------------------------------------------------------------- internal


@internal_router.post("/reservations", status_code=201, responses={201: {"model": ReservationPublic}})
async def reserve(body: ReservationCreate, _: InternalCaller, session: SessionDep) -> Response:
    """Reserve stock for an order, all or nothing; the same order_id again replays the result (200).

    A replay can say ``status: released``: that order id was released and holds nothing.
    """
    result, created = await reservations.reserve(session=session, data=body)
    return _json(result, 201 if created else 200)


@internal_router.post("/reservations/{order_id}/release", responses={200: {"model": ReservationPublic}})
async def release(order_id: uuid.UUID, _: InternalCaller, session: SessionDep) -> Response:
    """Give a reservation's stock back; idempotent. An unknown order id is recorded as released."""
    return _json(await reservations.release(session=session, order_id=order_id))
