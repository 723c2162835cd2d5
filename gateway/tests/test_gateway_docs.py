"""The gateway's own routes: health, readiness per upstream, the merged API document, the docs page."""

from __future__ import annotations

import json
import re

import httpx


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
