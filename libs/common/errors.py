"""Errors as RFC 9457 problem details.

Business code raises a :class:`DomainError` subclass and never ``HTTPException``;
:func:`install_problem_handlers` turns every error (domain, HTTP, validation,
unhandled) into ``application/problem+json`` with the request id and no internals.

Every problem's ``type`` is a stable URI from :data:`PROBLEM_TYPES` (``/problems/<slug>``),
so a client branches on ``type`` instead of parsing ``title`` or ``detail``: a refusal with
its own meaning names its slug (``Conflict(..., type_="insufficient-stock")``), any other
gets its status's generic type. The gateway serves the list at ``/problems``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse

from libs.common.logging import get_logger, request_id_var

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

# The one list of problem types: slug -> what it means to a client. Slugs are part of the API
# (clients branch on them): add new ones freely, never rename or reuse one.
PROBLEM_TYPES: dict[str, str] = {
    # generic, one per status: nothing more specific applies
    "bad-request": "The request cannot be processed as sent (400).",
    "unauthorized": "Sign in, or the token is missing, expired, revoked or not valid (401).",
    "forbidden": "Signed in, but this caller may not do this (403).",
    "not-found": "No such resource, or not one of the caller's (404).",
    "method-not-allowed": "The path exists but not with this method; `Allow` lists the methods (405).",
    "conflict": "The request conflicts with the current state of the resource (409).",
    "gone": "The resource existed and is no longer available (410).",
    "content-too-large": "The request body is over the size limit, given as `limit` (413).",
    "unsupported-media-type": "The body's content type is not accepted here (415).",
    "too-early": "The resource is not ready yet; retry after `Retry-After` seconds (425).",
    "validation-failed": "A field is missing or not valid; `errors` says which and why (422).",
    "unprocessable": "The request is well-formed but cannot be carried out (422).",
    "too-many-requests": "Rate limited or throttled; retry after `Retry-After` seconds (429).",
    "internal-error": "A bug on our side; it has been logged with the request id (500).",
    "service-unavailable": "A part of the shop is down; retry after `Retry-After` seconds (503).",
    "gateway-timeout": "A part of the shop did not answer in time; retrying is safe for reads (504).",
    # specific refusals a frontend shows or acts on
    "insufficient-stock": "Not enough stock: `short` lists each product with `requested` and `available` "
    "(orders), or `available` and `in_cart` name what can be added (cart, admin stock).",
    "product-unavailable": "The product is not sold (any more) or not active; `product_id` names it.",
    "variant-required": "The product has several variants: name a `variant_id`; `options` (cart) or "
    "`products` (reservations) say which choice is missing.",
    "last-variant": "A product keeps at least one variant: delete the product instead of its last variant.",
    "currency-mismatch": "The items are priced in different currencies; one cart or order holds one.",
    "quantity-limit": "At most `max_quantity` of one product per cart; `in_cart` is already there.",
    "cart-full": "The cart holds its maximum number of different products.",
    "wishlist-full": "The wishlist holds its maximum number of products.",
    "nothing-to-order": "The cart (or the given item list) is empty.",
    "status-change-not-allowed": "The order cannot move to that status; `current_status` and `allowed` say "
    "where it can go.",
    "idempotency-key-reused": "The Idempotency-Key was used for a different request; send a new key.",
    "request-in-progress": "A request with this Idempotency-Key is still running; retry after `Retry-After`.",
    "order-not-payable": "The order is not awaiting payment; `order_status` says what it is.",
    "order-not-payable-yet": "Payments has not yet heard of this order (just placed); retry after "
    "`Retry-After` seconds.",
    "payment-in-progress": "A payment of this order is already being processed; retry shortly.",
    "payment-refused": "The provider refused the payment method or the request; show `detail`, let the "
    "customer try another method.",
    "email-taken": "An account with this email already exists.",
    "weak-password": "The password is too short or too simple; `errors` names the field.",
    "wrong-password": "The current password is not correct.",
    "account-blocked": "The account is blocked; contact support.",
    "category-not-empty": "The category still has products or sub-categories (`product_count`, "
    "`subcategory_count`).",
    "return-not-allowed": "The order cannot be returned (not delivered, or its return window closed: "
    "`return_by`); `current_status` says what it is.",
    "return-change-not-allowed": "The return cannot move to that status; `current_status` and `allowed` "
    "say where it can go.",
    "email-already-sent": "The e-mail was delivered already; sending it again would reach the customer twice.",
}
_STATUS_TYPES: dict[int, str] = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    409: "conflict",
    410: "gone",
    413: "content-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    425: "too-early",
    429: "too-many-requests",
    500: "internal-error",
    503: "service-unavailable",
    504: "gateway-timeout",
}


def problem_type(slug: str | None, status: int) -> str:
    """The ``type`` URI of a registered ``slug``, or the generic one of ``status``."""
    if slug is None:
        slug = _STATUS_TYPES.get(status, "internal-error" if status >= 500 else "bad-request")
    if slug not in PROBLEM_TYPES:
        raise ValueError(f"unknown problem type {slug!r}: add it to libs.common.errors.PROBLEM_TYPES")
    return PROBLEM_BASE + slug


# How every service documents its refusals in OpenAPI: any 4xx is a problem body, so clients
# (and schema-driven tests) know 401/403/404/409/422/429 are not part of the success schema.
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {
            "type": "string",
            "description": "Stable URI to branch on; the list is GET /problems.",
            "examples": [PROBLEM_BASE + "insufficient-stock"],
        },
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "request_id": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message", "type"],
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


PROBLEM_SCHEMA: dict[str, Any] = _PROBLEM_SCHEMA  # the gateway's document names it once, as `Problem`


def problem_doc(description: str, *, fields: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An OpenAPI response entry for a status answered with problem+json; ``fields`` documents the
    extra members this refusal adds (e.g. ``short`` of an insufficient-stock 409)."""
    schema: dict[str, Any] = _PROBLEM_SCHEMA
    if fields:
        schema = {"allOf": [_PROBLEM_SCHEMA, {"type": "object", "properties": dict(fields)}]}
    return {"description": description, "content": {PROBLEM_JSON: {"schema": schema}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": problem_doc("Refused: RFC 9457 problem details (`errors` per field on 422)")
}
log = get_logger(__name__)
# Every 503 and 504 tells the client when to come back: without it clients either hammer
# a recovering service or give up. One value for all of them, set by problem_response.
RETRY_AFTER_SECONDS = 2


class DomainError(Exception):
    """A refusal a client can act on. Subclasses fix the status; ``extra`` adds fields."""

    status: int = 400
    title: str = "Bad request"
    #: this class's own problem slug; None means the status's generic one
    slug: str | None = None

    def __init__(
        self,
        detail: str,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        type_: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title
        self.type_ = problem_type(type_ or self.slug, self.status)
        self.headers = dict(headers or {})
        reserved = {"type", "title", "status", "detail", "request_id", "type_"} & extra.keys()
        if reserved:
            raise TypeError(f"problem fields {sorted(reserved)} cannot be passed as extras")
        self.extra = extra


class BadRequest(DomainError):
    status, title = 400, "Bad request"


class Unauthorized(DomainError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "Authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": "Bearer"})
        super().__init__(detail, **kw)


class Forbidden(DomainError):
    status, title = 403, "Forbidden"


class NotFound(DomainError):
    status, title = 404, "Not found"


class Conflict(DomainError):
    status, title = 409, "Conflict"


class Gone(DomainError):
    status, title = 410, "Gone"


class Unprocessable(DomainError):
    status, title = 422, "Unprocessable content"


class TooManyRequests(DomainError):
    status, title = 429, "Too many requests"

    def __init__(self, detail: str, *, retry_after: int, **kw: Any) -> None:
        kw.setdefault("headers", {"Retry-After": str(max(1, retry_after))})
        super().__init__(detail, retry_after=max(1, retry_after), **kw)


class ServiceUnavailable(DomainError):
    status, title = 503, "Service unavailable"


class GatewayTimeout(DomainError):
    status, title = 504, "Gateway timeout"


def problem_body(
    status: int, detail: str, *, title: str | None = None, type_: str | None = None, **extra: Any
) -> dict[str, Any]:
    """The RFC 9457 body; ``request_id`` is added from the current request's context.

    ``type_`` is a URI from :func:`problem_type` (or a bare registered slug); by default the status's.
    """
    if type_ is None or not type_.startswith(PROBLEM_BASE):
        type_ = problem_type(type_, status)
    body: dict[str, Any] = {
        "type": type_,
        "title": title or _phrase(status),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    if (rid := request_id_var.get()) is not None:
        body["request_id"] = rid
    return body


def problem_response(
    status: int, detail: str, *, headers: Mapping[str, str] | None = None, **kw: Any
) -> JSONResponse:
    """A ready ``application/problem+json`` response; a 503 or 504 always carries ``Retry-After``."""
    return JSONResponse(
        problem_body(status, detail, **kw),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=_answer_headers(status, headers),
    )


def _answer_headers(status: int, headers: Mapping[str, str] | None) -> dict[str, str]:
    out = dict(headers or {})
    if status in (503, 504) and not any(name.lower() == "retry-after" for name in out):
        out["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return out


def domain_problem(exc: DomainError) -> dict[str, Any]:
    """The problem body of a refusal: the one place a DomainError becomes RFC 9457 members.

    HTTP answers, stored idempotent answers and Socket.IO acknowledgements all use it, so a
    client reads the same fields (``extra`` included) whichever way the refusal reached it.
    """
    return problem_body(exc.status, exc.detail, title=exc.title, type_=exc.type_, **exc.extra)


def domain_response(exc: DomainError) -> JSONResponse:
    """:func:`domain_problem` as an ``application/problem+json`` response, with the error's headers."""
    return JSONResponse(
        domain_problem(exc),
        status_code=exc.status,
        media_type=PROBLEM_JSON,
        headers=_answer_headers(exc.status, exc.headers),
    )


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors as ``{field, message, type}`` a frontend can put next to a field."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append(
            {
                "field": ".".join(loc) or str(next(iter(err.get("loc", ["body"])), "body")),
                "message": str(err.get("msg", "invalid")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


async def _domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return domain_response(exc)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else _phrase(exc.status_code)
    return problem_response(exc.status_code, detail, headers=getattr(exc, "headers", None))


async def _validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc.errors())
    fields = ", ".join(e["field"] for e in errors[:5])
    return problem_response(
        422,
        f"The request is not valid: check {fields}.",
        title="Validation failed",
        type_="validation-failed",
        errors=errors,
    )


def unhandled_problem(exc: BaseException) -> JSONResponse:
    """Log ``exc`` with its traceback and answer a 500 problem that reveals nothing of it."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(
        500, "An unexpected error occurred. It has been logged.", title="Internal server error"
    )


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    return unhandled_problem(exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem+json response."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
