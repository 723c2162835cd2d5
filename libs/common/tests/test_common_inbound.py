"""What every service refuses before a route runs: invalid text, oversized bodies, forged forwarding.

Also who may read ``/metrics`` and that no redirect repeats a caller's ``Host``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import APIRouter, Request
from pydantic import BaseModel

from libs.common.config import CommonSettings
from libs.common.forwarding import TrustedForwarding, forwarding_proof, trusted_networks
from libs.common.service import create_service_app
from libs.common.testing import Infra, TestKeys, assert_problem, serve_app, settings_for

INTERNAL_TOKEN = "internal-secret-of-the-inbound-test"
PROOF = forwarding_proof(INTERNAL_TOKEN)
LIMIT = 4096


class Note(BaseModel):
    title: str
    tags: list[str] = []
    meta: dict[str, str] = {}


router = APIRouter()


@router.post("/notes")
async def save_note(body: Note) -> dict[str, int]:
    # what a service does with text sooner or later (asyncpg, Redis, hashing): encode it to UTF-8
    return {"bytes": len(body.title.encode()) + sum(len(t.encode()) for t in body.tags)}


@router.get("/search")
async def search(q: str = "") -> dict[str, str]:
    return {"q": q}


@router.get("/notes/{slug}")
async def read_note(slug: str) -> dict[str, str]:
    return {"slug": slug}


@router.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    return {
        "client": request.client.host if request.client else None,
        "forwarded": sorted(k for k in request.headers if k.startswith("x-forwarded-")),
    }


@pytest_asyncio.fixture(scope="module")
async def url(infra: Infra, keys: TestKeys) -> AsyncIterator[str]:
    settings = settings_for(
        CommonSettings,
        infra,
        keys,
        service_name="inboundtest",
        event_bus="memory",
        internal_api_token=INTERNAL_TOKEN,
        max_body_bytes=LIMIT,
    )
    app = create_service_app(settings=settings, title="inbound test", routers=[router])
    async with serve_app(app) as base:
        yield base


@pytest_asyncio.fixture
async def http(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=10) as c:
        yield c


def fields(resp: httpx.Response, status: int = 422) -> list[str]:
    return [e["field"] for e in assert_problem(resp, status)["errors"]]


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'{"title": "b\\ud800@example.com"}', "title"),  # an escaped lone surrogate
        (b'{"title": "ok", "tags": ["a", "\\uDC00"]}', "tags.1"),  # the low half alone
        (b'{"title": "ok", "meta": {"k": "x\\ud83d"}}', "meta.k"),  # a high half without its low half
        (b'{"title": "b\xed\xa0\x80"}', "title"),  # a surrogate encoded as UTF-8 bytes
        (b'{"title": "caf\xe9"}', "title"),  # Latin-1, not UTF-8
        (b'{"title": "ok", "meta": {"\\ud800": "v"}}', "meta.\\ud800"),  # in a key, shown escaped
    ],
)
async def test_invalid_unicode_in_a_body_is_a_422_naming_the_field(
    http: httpx.AsyncClient, raw: bytes, field: str
) -> None:
    # was: 500 (UnicodeEncodeError wherever the text was first encoded)
    resp = await http.post("/notes", content=raw, headers={"content-type": "application/json"})
    assert fields(resp) == [field]
    assert resp.json()["errors"][0]["type"] == "unicode_error"


async def test_valid_text_passes_surrogate_pairs_and_all(http: httpx.AsyncClient) -> None:
    raw = b'{"title": "\\ud83d\\ude00 caf\xc3\xa9", "tags": ["\\\\ud800 is how you write it"]}'
    resp = await http.post("/notes", content=raw, headers={"content-type": "application/json"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"bytes": len("😀 café".encode()) + len("\\ud800 is how you write it")}


async def test_invalid_unicode_in_the_query_or_path_is_a_422(http: httpx.AsyncClient) -> None:
    # was: silently turned into U+FFFD, so a search ran for text the client never sent
    assert fields(await http.get("/search?q=%ED%A0%80")) == ["q"]
    assert fields(await http.get("/search?page=2&q=caf%E9")) == ["q"]
    assert fields(await http.get("/notes/%FFslug")) == ["path"]
    assert (await http.get("/search?q=caf%C3%A9")).json() == {"q": "café"}


async def test_a_body_past_the_cap_is_a_413_declared_or_streamed(http: httpx.AsyncClient) -> None:
    big = b'{"title": "' + b"x" * LIMIT + b'"}'
    assert_problem(await http.post("/notes", content=big, headers={"content-type": "application/json"}), 413)

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it arrives
        yield big[:100]
        yield big[100:]

    assert_problem(
        await http.post("/notes", content=chunks(), headers={"content-type": "application/json"}), 413
    )
    fits = b'{"title": "' + b"x" * (LIMIT - 20) + b'"}'
    assert (
        await http.post("/notes", content=fits, headers={"content-type": "application/json"})
    ).status_code == 200


async def test_metrics_answer_only_the_internal_credential(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/metrics"), 403)
    assert_problem(await http.get("/metrics", headers={"X-Internal-Token": "guess"}), 403)
    resp = await http.get("/metrics", headers={"X-Internal-Token": INTERNAL_TOKEN})
    assert resp.status_code == 200 and "http_requests_total" in resp.text


async def test_no_redirect_repeats_the_callers_host(http: httpx.AsyncClient) -> None:
    # was: 307 to http://evil.example/search (Starlette's trailing-slash redirect builds on Host)
    resp = await http.get("/search/", headers={"Host": "evil.example"})
    assert_problem(resp, 404)
    assert "location" not in resp.headers


async def test_forwarding_headers_count_only_with_the_gateways_proof(http: httpx.AsyncClient) -> None:
    claim = {"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Host": "evil.example"}
    plain = (await http.get("/whoami", headers=claim)).json()
    assert plain == {"client": "127.0.0.1", "forwarded": []}  # a claim nobody proved is not even passed on
    forged = (
        await http.get("/whoami", headers={**claim, "X-Forwarded-Proof": forwarding_proof("guess")})
    ).json()
    assert forged == {"client": "127.0.0.1", "forwarded": []}
    proved = (await http.get("/whoami", headers={**claim, "X-Forwarded-Proof": PROOF})).json()
    assert proved == {"client": "198.51.100.7", "forwarded": ["x-forwarded-for", "x-forwarded-host"]}
    # only the hop the gateway appended counts, and the proof itself goes no further than this check
    chained = (
        await http.get(
            "/whoami", headers={"X-Forwarded-For": "6.6.6.6, 203.0.113.5", "X-Forwarded-Proof": PROOF}
        )
    ).json()
    assert chained["client"] == "203.0.113.5" and "x-forwarded-proof" not in chained["forwarded"]


def test_a_trusted_proxy_address_is_believed_but_never_a_loopback_one() -> None:
    assert [str(n) for n in trusted_networks(["127.0.0.1", "::1", "172.28.0.10", "10.1.0.0/16"])] == [
        "172.28.0.10/32",
        "10.1.0.0/16",
    ]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("not called")

    settings = CommonSettings(internal_api_token=INTERNAL_TOKEN, trusted_proxies=["172.28.0.10", "127.0.0.1"])
    guard = TrustedForwarding(app, settings=settings)

    def client_of(peer: str) -> Any:
        scope = {"type": "http", "client": (peer, 5000), "headers": [(b"x-forwarded-for", b"192.0.2.1")]}
        return guard.resolve(scope)["client"][0]

    assert client_of("172.28.0.10") == "192.0.2.1"
    assert client_of("172.28.0.11") == "172.28.0.11"
    assert client_of("127.0.0.1") == "127.0.0.1"
