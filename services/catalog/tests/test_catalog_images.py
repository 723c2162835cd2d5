"""Product images: the type read from the bytes, re-encoded without metadata, two thumbnails, kept in a
real S3-speaking server (moto's server mode on loopback); what is refused stores nothing."""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import boto3
import httpx
import pytest
from catalog_helpers import Builder, EventTap
from PIL import Image

from libs.common.testing import TestKeys, assert_problem, eventually


def jpeg_with_gps(width: int = 1200, height: int = 800) -> bytes:
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "SpyCam"  # Make
    exif[0x8825] = {1: "N", 2: (38.0, 42.0, 0.0)}  # GPS: where the picture was taken
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


def png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


async def upload(
    client: httpx.AsyncClient,
    admin: dict[str, str],
    product_id: str,
    data: bytes,
    *,
    name: str = "x.jpg",
    **form: str,
) -> httpx.Response:
    return await client.post(
        f"/admin/products/{product_id}/images",
        files={"file": (name, data, "image/jpeg")},
        data=form,
        headers=admin,
    )


def s3(s3_url: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=s3_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    )


async def bucket_keys(s3_url: str, product_id: str) -> list[str]:
    listing = s3(s3_url).list_objects_v2(Bucket="shop-media", Prefix=f"products/{product_id}/")
    return sorted(o["Key"] for o in listing.get("Contents", []))


def fetch(s3_url: str, url: str) -> tuple[bytes, str]:
    """An image's bytes and type as stored behind its URL (the bucket is private here; a shop puts a
    CDN or a public-read policy in front)."""
    assert url.startswith(f"{s3_url}/shop-media/"), url
    got = s3(s3_url).get_object(Bucket="shop-media", Key=url.removeprefix(f"{s3_url}/shop-media/"))
    return got["Body"].read(), got["ContentType"]


async def test_an_upload_is_cleaned_thumbnailed_stored_and_shown_on_the_product(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], s3_url: str, event_tap: EventTap
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    resp = await upload(client, admin, p["id"], jpeg_with_gps(), name="holiday.png", alt="Red tee, front")
    assert resp.status_code == 201, resp.text
    image = resp.json()
    assert (image["width"], image["height"], image["alt"], image["position"]) == (
        1200,
        800,
        "Red tee, front",
        0,
    )
    original, content_type = fetch(s3_url, image["url"])
    assert content_type == "image/jpeg"
    stored = Image.open(io.BytesIO(original))
    assert stored.format == "JPEG" and stored.size == (1200, 800)
    assert not stored.getexif() and "exif" not in stored.info  # the GPS position is gone
    assert Image.open(io.BytesIO(fetch(s3_url, image["thumbnails"]["small"])[0])).size == (200, 133)
    assert Image.open(io.BytesIO(fetch(s3_url, image["thumbnails"]["medium"])[0])).size == (600, 400)
    assert len(await bucket_keys(s3_url, p["id"])) == 3
    # the bucket stays private: catalog serves its objects at /media/<key> (the gateway's too)
    key = image["url"].removeprefix(f"{s3_url}/shop-media/")
    served = await client.get(f"/media/{key}")
    assert served.status_code == 200 and served.content == original
    assert served.headers["content-type"] == "image/jpeg"
    assert served.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert served.headers["x-content-type-options"] == "nosniff"
    again = await client.get(f"/media/{key}", headers={"If-None-Match": served.headers["etag"]})
    assert again.status_code == 304
    for missing in (key.replace("original", "small").replace(image["id"], str(uuid.uuid4())), "../x.jpg"):
        assert_problem(await client.get(f"/media/{missing}"), 404)
    second = (await upload(client, admin, p["id"], png(300, 300))).json()
    assert second["position"] == 1 and second["url"].endswith("/original.png")
    shown = (await client.get(f"/products/{p['id']}")).json()
    assert [m["id"] for m in shown["media"]] == [image["id"], second["id"]]
    listed = (await client.get("/products", params={"category": cat["id"]})).json()["items"][0]
    assert listed["media"] == shown["media"]

    async def announced() -> None:
        assert any(e.data["media"] for e in event_tap.of("product.updated", id=p["id"]))

    await eventually(announced)


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"%PDF-1.4 definitely not a picture", 415),
        (b"GIF89a" + png(2, 2)[6:], 415),
        (png(10_000, 10_000, mode="1"), 422),  # 100 megapixels in a few kilobytes: a bomb
        (jpeg_with_gps()[:2000], 422),  # truncated
        (b"\xff" * (2 * 1024 * 1024), 415),  # past the 1 MB of other routes, short of the 10 MB cap
        (b"\xff" * (11 * 1024 * 1024), 413),
    ],
)
async def test_what_is_not_a_usable_image_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], s3_url: str, data: bytes, status: int
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    assert_problem(await upload(client, admin, p["id"], data), status)
    assert await bucket_keys(s3_url, p["id"]) == []
    assert (await client.get(f"/products/{p['id']}")).json()["media"] == []


def noisy_jpeg(low: int, high: int) -> bytes:
    """A real photo-sized JPEG of low..high bytes: noise compresses badly, so its size follows its pixels."""
    width = 1000
    for _ in range(8):
        height = width * 2 // 3
        out = io.BytesIO()
        Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(
            out, format="JPEG", quality=95
        )
        if low <= len(out.getvalue()) < high:
            return out.getvalue()
        width = int(width * ((low + high) / 2 / len(out.getvalue())) ** 0.5)
    raise AssertionError("no JPEG of that size")


async def test_a_9_mb_photo_is_taken_and_an_11_or_50_mb_body_is_a_413_that_stores_nothing(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], s3_url: str
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    photo = noisy_jpeg(9 * 1024 * 1024, 10 * 1024 * 1024)
    taken = await upload(client, admin, p["id"], photo, alt="full size")
    assert taken.status_code == 201, taken.text
    assert len(await bucket_keys(s3_url, p["id"])) == 3
    other = await build.product(cat["id"])
    for size in (11, 50):
        refused = assert_problem(
            await upload(client, admin, other["id"], b"\xff" * (size * 1024 * 1024)), 413
        )
        assert refused["limit"] == 10 * 1024 * 1024 + 64 * 1024
    assert await bucket_keys(s3_url, other["id"]) == []
    assert (await client.get(f"/products/{other['id']}")).json()["media"] == []
    # the larger cap is the upload's alone: a 2 MB product update is still refused
    big = {"name": "x" * (2 * 1024 * 1024)}
    assert (
        assert_problem(await client.patch(f"/admin/products/{p['id']}", json=big, headers=admin), 413)[
            "limit"
        ]
        == 1024 * 1024
    )


async def test_an_image_is_reordered_linked_to_a_variant_and_deleted_with_its_bytes(
    client: httpx.AsyncClient, build: Builder, admin: dict[str, str], s3_url: str
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    other = await build.product(cat["id"])
    image = (await upload(client, admin, p["id"], png(50, 50))).json()
    url = f"/admin/products/{p['id']}/images/{image['id']}"
    variant_id = p["variants"][0]["id"]
    changed = await client.patch(
        url, json={"alt": "Side", "position": 5, "variant_id": variant_id}, headers=admin
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["alt"], changed.json()["position"], changed.json()["variant_id"]) == (
        "Side",
        5,
        variant_id,
    )
    foreign = await client.patch(url, json={"variant_id": other["variants"][0]["id"]}, headers=admin)
    assert [e["field"] for e in assert_problem(foreign, 422)["errors"]] == ["variant_id"]
    assert_problem(await client.patch(url, json={"alt": None}, headers=admin), 422)
    assert_problem(
        await client.delete(f"/admin/products/{other['id']}/images/{image['id']}", headers=admin), 404
    )
    # the variant names the image it is shown with, until the image goes
    [shown] = (await client.get(f"/products/{p['id']}")).json()["variants"]
    assert shown["image_id"] == image["id"]
    assert (await client.delete(url, headers=admin)).status_code == 204
    [shown] = (await client.get(f"/products/{p['id']}")).json()["variants"]
    assert shown["image_id"] is None
    assert await bucket_keys(s3_url, p["id"]) == []
    assert (await client.get(f"/products/{p['id']}")).json()["media"] == []


async def test_only_admins_manage_images(
    client: httpx.AsyncClient, build: Builder, keys: TestKeys, s3_url: str
) -> None:
    cat = await build.category()
    p = await build.product(cat["id"])
    image_id = str(uuid.uuid4())
    for headers, status in (({}, 401), (keys.bearer(role="user"), 403)):
        calls: list[Any] = [
            client.post(
                f"/admin/products/{p['id']}/images", files={"file": ("a.png", png(5, 5))}, headers=headers
            ),
            client.patch(f"/admin/products/{p['id']}/images/{image_id}", json={"alt": "x"}, headers=headers),
            client.delete(f"/admin/products/{p['id']}/images/{image_id}", headers=headers),
        ]
        for call in calls:
            assert_problem(await call, status)
    assert await bucket_keys(s3_url, p["id"]) == []
