"""Errors as RFC 9457 problem details.

Business code raises a :class:`DomainError` subclass and never ``HTTPException``;
:func:`install_problem_handlers` turns every error (domain, HTTP, validation,
unhandled) into ``application/problem+json`` with the request id and no internals.
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
# How every service documents its refusals in OpenAPI: any 4xx is a problem body, so clients
# (and schema-driven tests) know 401/403/404/409/422/429 are not part of the success schema.
_PROBLEM_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["type", "title", "status", "detail"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "request_id": {"type": "string"},
                   "errors": {"type": "array", "items": {"type": "object"}}}}


def problem_doc(description: str) -> dict[str, Any]:
    """An OpenAPI response entry for a status answered with problem+json."""
    return {"description": description, "content": {PROBLEM_JSON: {"schema": _PROBLEM_SCHEMA}}}


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    "4XX": problem_doc("Refused: RFC 9457 problem details (`errors` per field on 422)")}
log = get_logger(__name__)
# Every 503 and 504 tells the client when to come back: without it clients either hammer
# a recovering service or give up. One value for all of them, set by problem_response.
RETRY_AFTER_SECONDS = 2


class DomainError(Exception):
    """A refusal a client can act on. Subclasses fix the status; ``extra`` adds fields."""

    status: int = 400
    title: str = "Bad request"
    type_: str = "about:blank"

    def __init__(self, detail: str, *, title: str | None = None, headers: Mapping[str, str] | None = None,
                 **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if title is not None:
            self.title = title
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


def problem_body(status: int, detail: str, *, title: str | None = None, type_: str = "about:blank",
                 **extra: Any) -> dict[str, Any]:
    """The RFC 9457 body; ``request_id`` is added from the current request's context."""
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


def problem_response(status: int, detail: str, *, headers: Mapping[str, str] | None = None,
                     **kw: Any) -> JSONResponse:
    """A ready ``application/problem+json`` response; a 503 or 504 always carries ``Retry-After``."""
    return JSONResponse(problem_body(status, detail, **kw), status_code=status,
                        media_type=PROBLEM_JSON, headers=_answer_headers(status, headers))


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
    return JSONResponse(domain_problem(exc), status_code=exc.status, media_type=PROBLEM_JSON,
                        headers=_answer_headers(exc.status, exc.headers))


def validation_errors(errors: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic errors as ``{field, message, type}`` a frontend can put next to a field."""
    out = []
    for err in errors:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body", "query", "path", "header")]
        out.append({"field": ".".join(loc) or str(next(iter(err.get("loc", ["body"])), "body")),
                    "message": str(err.get("msg", "invalid")), "type": str(err.get("type", "value_error"))})
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
    return problem_response(422, f"The request is not valid: check {fields}.", title="Validation failed",
                            errors=errors)


def unhandled_problem(exc: BaseException) -> JSONResponse:
    """Log ``exc`` with its traceback and answer a 500 problem that reveals nothing of it."""
    log.error("unhandled_error", error_type=type(exc).__name__, exc_info=exc)
    return problem_response(500, "An unexpected error occurred. It has been logged.",
                            title="Internal server error")


async def _unhandled(_: Request, exc: Exception) -> JSONResponse:
    return unhandled_problem(exc)


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error of ``app`` a problem+json response."""
    app.add_exception_handler(DomainError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unhandled)
