"""The admin console: a static page the realtime service serves at ``/console/``.

It is served by realtime (not a separate web server) because it is a client of this
service's socket and the gateway already routes ``/console/`` here, so the page, the REST
API and ``/socket.io/`` share one origin: no CORS, and a strict Content-Security-Policy
(``script-src 'self'``, no inline code) holds.

Only the files listed in ``FILES`` are served. The official socket.io-client is not kept in
the repository: ``make console`` installs the pinned version from npm into
``node_modules/`` here (the realtime image does the same in a build stage), and it is served
as ``/console/vendor/socket.io.min.js``. Without it that route is a 404 and the page says
how to build it.

Every answer is ``Cache-Control: no-cache`` with an ``ETag``: browsers revalidate on each load
(cheap 304s), so a deploy shows up at once in a console that stays open all day.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import FileResponse, RedirectResponse, Response

from libs.common.errors import NotFound
from libs.common.headers import etag_matches
from libs.common.logging import get_logger

HERE = Path(__file__).parent
CLIENT = HERE / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
BUILD_HINT = "make console (npm install in services/realtime/console)"
# the page's scripts, one per screen after the shared core, in the order index.html loads them
SCRIPTS = (
    "core.js",
    "messages.js",
    "editing.js",
    "dashboard.js",
    "orders.js",
    "returns.js",
    "customers.js",
    "catalog.js",
    "catalog-editor.js",
    "promotions.js",
    "emails.js",
    "shipping.js",
    "taxes.js",
    "webhooks.js",
    "apikeys.js",
    "feed.js",
)
# URL path under /console/ -> file; nothing else of this folder (package.json, node_modules) is exposed
FILES: dict[str, Path] = {
    "": HERE / "index.html",
    **{name: HERE / name for name in SCRIPTS},
    "console.css": HERE / "console.css",
    "admin.css": HERE / "admin.css",
    "catalog.css": HERE / "catalog.css",
    "vendor/socket.io.min.js": CLIENT,
    "vendor/socket.io.min.js.map": CLIENT.with_name("socket.io.min.js.map"),
}
# the page needs its own scripts, styles, the API and the socket, all on this origin, and nothing else
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",
}
log = get_logger(__name__)


def console_router() -> APIRouter:
    """Routes of the console page; logs a warning when the socket client was not built."""
    if not CLIENT.is_file():
        log.warning("console_client_not_built", missing=str(CLIENT.relative_to(HERE)), build=BUILD_HINT)
    router = APIRouter(include_in_schema=False)

    @router.get("/console")
    async def console_root() -> Response:
        # a relative Location: behind the gateway an absolute one would name this service's host
        return RedirectResponse("/console/", status_code=308, headers=SECURITY_HEADERS)

    @router.get("/console/{name:path}")
    async def console_file(name: str, request: Request) -> Response:
        path = FILES.get(name)
        if path is None:
            raise NotFound(f"The console has no file {name!r}.")
        if not path.is_file():
            hint = (
                f" Build the socket client with {BUILD_HINT}." if path.is_relative_to(CLIENT.parent) else ""
            )
            raise NotFound(f"{name} is missing.{hint}")
        response = FileResponse(path, headers=SECURITY_HEADERS, stat_result=path.stat())
        etag = response.headers["etag"]
        if etag_matches(request.headers.get("if-none-match", ""), etag):
            return Response(status_code=304, headers={**SECURITY_HEADERS, "ETag": etag})
        return response

    return router


def same_origin_or_listed(origins: list[str]) -> Callable[[str | None, dict[str, Any]], bool]:
    """The Socket.IO origin check: the listed origins, plus the origin the request came through.

    The console is same-origin with the gateway whatever host it is deployed at, so it must not
    need listing in ``CORS_ORIGINS``. Through the gateway that origin is ``X-Forwarded-Proto`` and
    ``X-Forwarded-Host`` (the gateway drops client-sent ones and sets its own), reached directly
    it is ``Host``. A browser cannot forge these for another site's page.
    """
    listed = frozenset(origins)

    def allowed(origin: str | None, environ: dict[str, Any]) -> bool:
        if origin is None or "*" in listed or origin in listed:
            return True
        host = environ.get("HTTP_X_FORWARDED_HOST") or environ.get("HTTP_HOST")
        proto = environ.get("HTTP_X_FORWARDED_PROTO") or environ.get("wsgi.url_scheme", "http")
        if not host:
            return False
        # the gateway names a relayed websocket's scheme ws/wss; the page's origin is http/https
        scheme = {"ws": "http", "wss": "https"}.get(proto.split(",")[0].strip(), proto.split(",")[0].strip())
        return origin == f"{scheme}://{host.split(',')[0].strip()}"

    return allowed
