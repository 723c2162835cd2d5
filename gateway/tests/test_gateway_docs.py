"""The gateway's own routes: health, readiness per upstream, the merged API document, the docs page."""

from __future__ import annotations

import json
import re

import httpx

from libs.common.testing import assert_problem


async def test_healthz_answers_without_asking_anyone(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/healthz")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}


async def test_readyz_reports_each_upstream_and_fails_while_one_is_down(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/readyz")
    assert resp.status_code == 503
    checks = resp.json()["checks"]
    assert checks["redis"] == "ok" and checks["catalog"] == "ok" and checks["auth"] == "ok"
    assert checks["orders"].startswith("unavailable")


async def test_openapi_merges_the_routed_paths_of_every_service(gw: httpx.AsyncClient) -> None:
    doc = (await gw.get("/openapi.json")).json()
    paths = doc["paths"]
    assert "get" in paths["/users/me"] and "get" in paths["/categories/{id_or_slug}"]
    assert "post" in paths["/admin/categories"]
    assert not any(p.startswith("/internal") for p in paths), "internal routes are never shown"
    assert "/{path}" not in paths and "/healthz" not in paths
    assert paths["/users/me"]["get"]["tags"] == ["auth"]


async def test_openapi_keeps_both_versions_of_a_schema_name_two_services_use(gw: httpx.AsyncClient) -> None:
    doc = (await gw.get("/openapi.json")).json()
    schemas = doc["components"]["schemas"]
    assert schemas["Page"]["properties"]["items"]["items"]["type"] == "string"  # auth's
    assert schemas["CatalogPage"]["properties"]["items"]["items"]["type"] == "integer"  # catalog's, renamed
    admin_categories = doc["paths"]["/admin/categories"]["post"]
    ref = admin_categories["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/CatalogPage"
    for ref in re.findall(r'"#/components/schemas/([^"]+)"', json.dumps(doc)):
        assert ref in schemas, ref


async def test_docs_page_shows_swagger_ui_for_the_merged_document(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/docs")
    assert resp.status_code == 200 and "swagger" in resp.text.lower() and "/openapi.json" in resp.text


async def test_docs_page_needs_no_internet_its_assets_come_from_the_gateway(gw: httpx.AsyncClient) -> None:
    page = (await gw.get("/docs")).text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets and not [a for a in assets if "//" in a], assets
    for asset in assets:
        resp = await gw.get(asset)
        assert resp.status_code == 200 and len(resp.content) > 1000, asset
    js = await gw.get("/docs/assets/swagger-ui-bundle.js")
    assert js.headers["content-type"].startswith("text/javascript") and b"SwaggerUIBundle" in js.content
    assert_problem(await gw.get("/docs/assets/..%2Fcore.py"), 404)
    assert_problem(await gw.get("/docs/assets/core.py"), 404)


async def test_root_is_an_index_of_the_pages_a_newcomer_needs(gw: httpx.AsyncClient) -> None:
    resp = await gw.get("/")
    assert resp.status_code == 200
    links = resp.json()["links"]
    assert {"docs", "openapi", "events", "asyncapi", "problems", "console"} <= set(links)
    for name in ("docs", "openapi", "events", "asyncapi", "problems", "health"):
        assert (await gw.get(links[name])).status_code == 200, name


async def test_problem_types_are_listed_in_one_place_and_each_uri_resolves(gw: httpx.AsyncClient) -> None:
    items = (await gw.get("/problems")).json()["items"]
    types = {i["type"]: i for i in items}
    assert "/problems/insufficient-stock" in types and "/problems/validation-failed" in types
    one = await gw.get("/problems/insufficient-stock")
    assert one.status_code == 200 and one.json() == types["/problems/insufficient-stock"]
    assert "short" in one.json()["description"]
    assert_problem(await gw.get("/problems/no-such-thing"), 404, "not-found")


async def test_the_gateways_own_refusals_carry_their_type(gw: httpx.AsyncClient) -> None:
    assert_problem(await gw.get("/no/such/route"), 404, "not-found")
    assert_problem(await gw.get("/users/me"), 401, "unauthorized")
