"""The OpenAPI document the typed TypeScript client is generated from (``make client-check``) is the
running gateway's: built offline by ``services.openapi``, byte for byte what ``/openapi.json`` serves."""

from __future__ import annotations

import httpx
import pytest

from services.openapi import document

pytestmark = pytest.mark.e2e


async def test_the_build_time_document_is_what_the_gateway_serves(gw: httpx.AsyncClient) -> None:
    served = await gw.get("/openapi.json")
    assert served.status_code == 200
    built = document()
    assert served.json()["paths"].keys() == built["paths"].keys()
    assert served.json() == built
