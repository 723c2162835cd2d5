"""The gateway's own pages for people and client authors: an index at ``/``, the API docs, the problem types.

Swagger UI's script and stylesheet are served from the ``fastapi-offline`` wheel, not a CDN,
so ``/docs`` works on a machine without internet and on a network that blocks CDNs.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.responses import FileResponse, HTMLResponse, JSONResponse

from gateway import eventdocs
from libs.common.errors import PROBLEM_BASE, PROBLEM_TYPES, NotFound

ASSETS_PATH = "/docs/assets/"
# the files of the wheel that the docs page loads; nothing else of the package is served
ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}
# paths and path prefixes answered here rather than looked up in the route table
OWN_PATHS = frozenset(
    {"/", "/problems", "/docs", "/docs/oauth2-redirect", eventdocs.PAGE_PATH, eventdocs.JSON_PATH}
)
OWN_PREFIXES = (PROBLEM_BASE, ASSETS_PATH)
LINKS = {
    "docs": "/docs",
    "openapi": "/openapi.json",
    "events": eventdocs.PAGE_PATH,
    "asyncapi": eventdocs.JSON_PATH,
    "problems": "/problems",
    "console": "/console/",
    "health": "/healthz",
    "ready": "/readyz",
}

router = APIRouter(include_in_schema=False)


@router.get("/")
async def index() -> dict[str, object]:
    """Where to start: every page a newcomer or a client author needs."""
    return {"name": "Shop API", "links": LINKS}


@router.get("/docs")
async def docs() -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title="Shop API",
        swagger_js_url=f"{ASSETS_PATH}swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS_PATH}swagger-ui.css",
        swagger_favicon_url=f"{ASSETS_PATH}favicon.png",
    )


@router.get(ASSETS_PATH + "{name}")
async def docs_asset(name: str) -> FileResponse:
    if name not in ASSETS:
        raise NotFound(f"The docs have no file {name[:80]!r}.")
    path = resources.files("fastapi_offline") / "static" / name
    return FileResponse(
        str(path), media_type=ASSETS[name], headers={"Cache-Control": "public, max-age=86400"}
    )


@router.get("/problems")
async def problems() -> dict[str, object]:
    """Every problem ``type`` a client may branch on, with what it means."""
    return {"items": [_problem(slug) for slug in PROBLEM_TYPES]}


@router.get(PROBLEM_BASE + "{slug}")
async def problem(slug: str) -> JSONResponse:
    if slug not in PROBLEM_TYPES:
        raise NotFound(f"No problem type {slug[:80]!r}; GET /problems lists them.")
    return JSONResponse(_problem(slug))


def _problem(slug: str) -> dict[str, str]:
    return {"type": PROBLEM_BASE + slug, "slug": slug, "description": PROBLEM_TYPES[slug]}
