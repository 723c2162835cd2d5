"""Images in the embedded mode (``make dev``): with no S3 configured they are kept in ``.data/media/``
and served through the gateway, cached for good since a key never changes.

Catalog and the gateway run as real servers on loopback with the settings the devserver gives them
(its own ``part_overrides``), the gateway on the port the catalog's image URLs name.
"""

from __future__ import annotations

import argparse
import io
import random
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from PIL import Image

from devserver.embedded import EmbeddedInfra, free_offset, part_overrides
from gateway.app import create_app as create_gateway
from gateway.settings import GatewaySettings
from libs.common.parts import GATEWAY, part
from libs.common.testing import Infra, TestKeys, assert_problem, serve_app, settings_for
from services.catalog.app import create_app as create_catalog
from services.catalog.settings import CatalogSettings

CATALOG = part("catalog")


def png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), (10, 120, 200)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("devdata")


@pytest_asyncio.fixture(scope="module")
async def shop(
    infra: Infra, keys: TestKeys, data_dir: Path, monkeypatch_module: pytest.MonkeyPatch
) -> AsyncIterator[str]:
    """The gateway's base URL, catalog behind it, both set up as the devserver sets them up."""
    monkeypatch_module.delenv("MEDIA_S3_ENDPOINT", raising=False)
    monkeypatch_module.delenv("MEDIA_PUBLIC_URL", raising=False)
    offset = free_offset([GATEWAY, CATALOG], "127.0.0.1", random.randrange(100, 200) * 100)
    assert offset is not None
    args = argparse.Namespace(data_dir=data_dir, port_offset=offset, host="127.0.0.1")
    dev = part_overrides(CATALOG, args, EmbeddedInfra(data_dir), ("admin@example.com", "x"))
    media = {k: v for k, v in dev.items() if k.startswith("media_")}
    catalog_settings = settings_for(CatalogSettings, infra, keys, **media)
    async with serve_app(create_catalog(catalog_settings), port=CATALOG.port + offset) as catalog_url:
        gateway_settings = settings_for(GatewaySettings, infra, keys, catalog_url=catalog_url)
        async with serve_app(create_gateway(gateway_settings), port=GATEWAY.port + offset) as gateway_url:
            yield gateway_url


@pytest.fixture(scope="module")
def monkeypatch_module() -> Any:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


async def test_an_image_uploaded_in_dev_is_kept_in_data_media_and_served_through_the_gateway(
    shop: str, keys: TestKeys, data_dir: Path
) -> None:
    admin = keys.bearer(role="admin")
    async with httpx.AsyncClient(base_url=shop, timeout=30) as gw:
        cat = (
            await gw.post("/admin/categories", json={"name": f"Shirts {uuid.uuid4().hex[:6]}"}, headers=admin)
        ).json()
        product = await gw.post(
            "/admin/products",
            json={
                "name": "Dev tee",
                "price": 1500,
                "sku": f"DEV-{uuid.uuid4().hex[:10]}",
                "category_id": cat["id"],
                "stock": 3,
            },
            headers=admin,
        )
        assert product.status_code == 201, product.text
        pid = product.json()["id"]
        uploaded = await gw.post(
            f"/admin/products/{pid}/images",
            files={"file": ("a.png", png(900, 600), "image/png")},
            headers=admin,
        )
        assert uploaded.status_code == 201, uploaded.text
        image = (await gw.get(f"/products/{pid}")).json()["media"][0]
        assert image["url"].startswith(f"{shop}/media/products/{pid}/")
        stored = sorted(p.name for p in (data_dir / "media" / "products" / pid).rglob("*.png"))
        assert stored == ["medium.png", "original.png", "small.png"]

        for url, size in (
            (image["url"], (900, 600)),
            (image["thumbnails"]["small"], (200, 133)),
            (image["thumbnails"]["medium"], (600, 400)),
        ):
            got = await gw.get(url)  # no token: images are public
            assert got.status_code == 200, got.text
            assert got.headers["content-type"] == "image/png"
            assert got.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert got.headers["x-content-type-options"] == "nosniff"
            assert Image.open(io.BytesIO(got.content)).size == size
            again = await gw.get(url, headers={"If-None-Match": got.headers["etag"]})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == got.headers["etag"]
            assert (await gw.head(url)).headers["content-length"] == str(len(got.content))

        # deleting the image deletes its files, and its URLs stop answering
        deleted = await gw.delete(f"/admin/products/{pid}/images/{image['id']}", headers=admin)
        assert deleted.status_code == 204
        assert not (data_dir / "media" / "products" / pid).exists()
        assert_problem(await gw.get(image["url"]), 404)


@pytest.mark.parametrize(
    "raw_path",
    [
        b"/media/..%2f..%2f..%2fetc%2fpasswd",
        b"/media/%2e%2e/%2e%2e/pyproject.toml",
        b"/media/products/..%2F..%2Fadmin.txt",
        b"/media/products%2f..%2f..%2f..%2fetc%2fhostname",
        b"/media/%2fetc%2fpasswd",
        b"/media/products/x/y/original.png%00.png",
    ],
)
async def test_a_key_that_is_not_an_image_of_the_shop_is_refused(
    shop: str, data_dir: Path, raw_path: bytes
) -> None:
    (data_dir / "admin.txt").write_text("secret")
    # sent byte for byte: an HTTP client would resolve the dots itself
    async with httpx.AsyncClient(timeout=30) as gw:
        request = gw.build_request("GET", shop)
        request.url = request.url.copy_with(raw_path=raw_path)
        got = await gw.send(request)
    assert got.status_code in (400, 404, 422), (raw_path, got.status_code)
    assert b"secret" not in got.content and b"root:" not in got.content
