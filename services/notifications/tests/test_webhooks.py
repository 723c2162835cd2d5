"""Webhooks against real servers: notifications on the real PostgreSQL and RabbitMQ, receivers that are
real HTTP servers on loopback (the standard library's, checking signatures with ``hmac`` as an
integrator would), and a real realtime service for the admins' live notice."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import http.server
import itertools
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio
import sqlalchemy as sa
from fastapi import FastAPI

from libs.common.events import Envelope
from libs.common.testing import (
    Infra,
    TestKeys,
    assert_problem,
    eventually,
    running_app,
    serve_app,
    settings_for,
)
from libs.common.testing.apps import free_port
from services.notifications.app import create_app
from services.notifications.context import NotificationsContext
from services.notifications.settings import NotificationsSettings
from services.notifications.webhook_models import WebhookEndpoint
from services.notifications.webhook_security import system_resolve
from services.realtime.app import create_app as create_realtime
from services.realtime.settings import RealtimeSettings

TOLERANCE = 300  # seconds a receiver accepts a signature's timestamp for
TIMEOUT = 1.5  # WEBHOOK_TIMEOUT here


def verify(secret: str, header: str, body: bytes, *, now: float | None = None) -> bool:
    """What an integrator writes (README): any v1 matching HMAC-SHA256("<t>.<body>"), t recent."""
    fields = [part.split("=", 1) for part in header.split(",")]
    t = int(dict(fields)["t"])
    if abs((now or time.time()) - t) > TOLERANCE:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(expected, v) for k, v in fields)


@dataclass
class Request:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.monotonic() when it arrived
    answered: int


@dataclass
class Receiver:
    """An integrator's server (standard library, its own threads). What each path does:
    /ok/<name> 200; /verify/<name> 200 if signed with ``secrets[name]`` and recent, else 400;
    /flaky/<name>/<n> 500 (with a long body) n times per event, then 200; /hang/<name> never answers
    in time; /slow/<name> 200 after 0.1 s, counting how many it answers at once; /down/<name> 503;
    /redirect/<name> 307 to /ok/<name>; /nul/<name> 200 with a NUL in its answer."""

    port: int
    secrets: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: http.server.ThreadingHTTPServer | None = None
    busy: dict[str, int] = field(default_factory=dict)  # /slow/<name>: requests being answered now
    most_busy: dict[str, int] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def answer(self, path: str, headers: dict[str, str], body: bytes) -> tuple[int, bytes, dict[str, str]]:
        kind, name, *rest = path.strip("/").split("/")
        if kind == "verify":
            ok = verify(self.secrets.get(name, ""), headers.get("shop-signature", ""), body)
            return (200 if ok else 400), b"", {}
        if kind == "flaky":
            event = headers.get("shop-event-id")
            with self.lock:
                tries = sum(
                    1 for r in self.requests if r.path == path and r.headers.get("shop-event-id") == event
                )
            return (500, b"x" * 5000, {}) if tries < int(rest[0]) else (200, b"thanks", {})
        if kind == "hang":
            with self.lock:
                self.requests.append(Request(path, headers, body, time.monotonic(), 0))
            time.sleep(TIMEOUT * 4)
            return 200, b"", {}
        if kind == "slow":
            with self.lock:
                self.busy[name] = self.busy.get(name, 0) + 1
                self.most_busy[name] = max(self.most_busy.get(name, 0), self.busy[name])
            time.sleep(0.1)
            with self.lock:
                self.busy[name] -= 1
            return 200, b"", {}
        if kind == "down":
            return 503, b"down for maintenance", {}
        if kind == "nul":
            return 200, b"ok\x00 thanks", {}
        if kind == "redirect":
            return 307, b"", {"Location": self.url(f"/ok/{name}")}
        return 200, b'{"received": true}', {}

    def start(self) -> None:
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                request = Request(self.path, headers, body, time.monotonic(), 0)
                status, reply, extra = receiver.answer(self.path, headers, body)
                request.answered = status
                with receiver.lock:
                    receiver.requests.append(request)
                try:
                    self.send_response(status)
                    for k, v in extra.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except OSError:
                    pass  # the sender gave up waiting (the hanging endpoint)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    r = Receiver(port=free_port())
    r.start()
    yield r
    r.stop()


@pytest_asyncio.fixture(scope="module")
async def hooks_app(infra: Infra, keys: TestKeys) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    app = create_app(_settings(infra, keys))
    async with running_app(app) as client:
        yield app, client


def _settings(infra: Infra, keys: TestKeys) -> NotificationsSettings:
    return settings_for(
        NotificationsSettings,
        infra,
        keys,
        db_prefix=f"{infra.db_prefix}wh_",
        events_queue_prefix=f"{infra.queue_prefix}wh.",
        auth_url="http://127.0.0.1:9",  # no order mails here: these events name no customer
        webhook_allow_private=True,  # the receivers are on loopback
        webhook_retry_base=0.1,
        webhook_retry_max=0.4,
        webhook_timeout=TIMEOUT,
        webhook_poll_interval=0.2,
        webhook_endpoint_concurrency=2,
    )


@dataclass
class Hooks:
    client: httpx.AsyncClient
    ctx: NotificationsContext
    keys: TestKeys
    receiver: Receiver

    @property
    def admin(self) -> dict[str, str]:
        return self.keys.bearer(role="admin")

    async def register(self, path: str, events: list[str], **extra: Any) -> dict[str, Any]:
        resp = await self.client.post(
            "/admin/webhooks",
            json={"url": self.receiver.url(path), "events": events, **extra},
            headers=self.admin,
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json())

    async def publish(self, type_: str = "product.updated", **data: Any) -> Envelope:
        """An event on the real exchange, as a producer's relay publishes it."""
        envelope = Envelope.new(type_, {"id": str(uuid.uuid4()), "name": "Lamp", **data}, producer="catalog")
        await self.ctx.bus.publish(envelope)
        return envelope

    async def deliveries(self, webhook_id: str, **query: Any) -> list[dict[str, Any]]:
        resp = await self.client.get(
            f"/admin/webhooks/{webhook_id}/deliveries", params={"page_size": 100, **query}, headers=self.admin
        )
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])

    async def settled(self, webhook_id: str, count: int = 1, timeout: float = 15) -> list[dict[str, Any]]:
        async def done() -> list[dict[str, Any]]:
            rows = await self.deliveries(webhook_id)
            assert len(rows) >= count and all(r["status"] != "pending" for r in rows), rows
            return rows

        return await eventually(done, timeout=timeout)

    async def received(self, path: str, count: int = 1, timeout: float = 15) -> list[Request]:
        async def arrived() -> list[Request]:
            got = self.receiver.to(path)
            assert len(got) >= count, f"{len(got)} of {count} at {path}"
            return got

        return await eventually(arrived, timeout=timeout)


@pytest_asyncio.fixture
async def hooks(
    hooks_app: tuple[FastAPI, httpx.AsyncClient], keys: TestKeys, receiver: Receiver
) -> AsyncIterator[Hooks]:
    app, client = hooks_app
    ctx: NotificationsContext = app.state.ctx
    yield Hooks(client=client, ctx=ctx, keys=keys, receiver=receiver)
    # each test's endpoints go with it, so later events are not delivered to them
    wh = ctx.state.webhooks
    wh.allow_private, wh.resolve = True, system_resolve
    assert ctx.db is not None
    async with ctx.db.session() as s, s.begin():
        await s.execute(sa.delete(WebhookEndpoint))


def _name() -> str:
    return uuid.uuid4().hex[:8]


async def test_only_admins_manage_webhooks(hooks: Hooks) -> None:
    made = await hooks.register(f"/ok/{_name()}", ["order.*"])
    for method, path in (
        ("GET", "/admin/webhooks"),
        ("POST", "/admin/webhooks"),
        ("GET", f"/admin/webhooks/{made['id']}"),
        ("PATCH", f"/admin/webhooks/{made['id']}"),
        ("DELETE", f"/admin/webhooks/{made['id']}"),
        ("POST", f"/admin/webhooks/{made['id']}/rotate-secret"),
        ("GET", f"/admin/webhooks/{made['id']}/deliveries"),
    ):
        body = {"url": hooks.receiver.url("/ok/x"), "events": ["#"]} if method != "GET" else None
        guest = await hooks.client.request(method, path, json=body)
        assert_problem(guest, 401)
        customer = await hooks.client.request(method, path, json=body, headers=hooks.keys.bearer())
        assert_problem(customer, 403)
    still = await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin)
    assert still.status_code == 200 and still.json()["url"] == made["url"]


async def test_an_endpoint_is_registered_changed_and_removed_and_its_secret_shown_once(hooks: Hooks) -> None:
    made = await hooks.register(f"/ok/{_name()}", ["order.*", "payment.succeeded"], description="ERP")
    assert made["secret"].startswith("whsec_") and len(made["secret"]) > 40
    assert made["active"] is True and made["events"] == ["order.*", "payment.succeeded"]
    got = (await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin)).json()
    assert "secret" not in got and got["secret_prefix"] == made["secret"][:12]
    listed = (await hooks.client.get("/admin/webhooks", headers=hooks.admin)).json()
    assert [w["id"] for w in listed["items"]] == [made["id"]] and "secret" not in listed["items"][0]

    changed = await hooks.client.patch(
        f"/admin/webhooks/{made['id']}", json={"events": ["#"], "active": False}, headers=hooks.admin
    )
    assert (
        changed.status_code == 200 and changed.json()["events"] == ["#"] and changed.json()["active"] is False
    )
    bad: dict[str, Any]
    for bad in (
        {"events": []},
        {"events": ["order..x"]},
        {"url": "ftp://example.com/"},
        {"url": "not a url"},
    ):
        resp = await hooks.client.patch(f"/admin/webhooks/{made['id']}", json=bad, headers=hooks.admin)
        assert_problem(resp, 422)
    assert (
        await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin)
    ).json() == changed.json()

    gone = await hooks.client.delete(f"/admin/webhooks/{made['id']}", headers=hooks.admin)
    assert gone.status_code == 204
    assert_problem(await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin), 404)


async def test_a_matching_event_arrives_signed_and_an_independent_receiver_verifies_it(hooks: Hooks) -> None:
    name = _name()
    made = await hooks.register(f"/verify/{name}", ["product.*"])
    hooks.receiver.secrets[name] = made["secret"]
    other = await hooks.register(f"/ok/{name}-orders", ["order.created"])

    event = await hooks.publish("product.updated", price=1299)
    request = (await hooks.received(f"/verify/{name}"))[0]
    assert request.answered == 200, "the receiver's own hmac check accepted the signature"
    assert request.headers["shop-event-id"] == str(event.id)
    assert request.headers["shop-event-type"] == "product.updated"
    assert request.headers["content-type"] == "application/json"
    assert Envelope.from_bytes(request.body) == event, "the body is the envelope as published"

    # what an attacker could do with a captured request: change the body, or replay it later
    async with httpx.AsyncClient() as http:
        tampered = await http.post(
            hooks.receiver.url(f"/verify/{name}"),
            content=request.body.replace(b"1299", b"1"),
            headers={"Shop-Signature": request.headers["shop-signature"]},
        )
        assert tampered.status_code == 400
        stale_t = int(time.time()) - TOLERANCE - 60
        stale_sig = hmac.new(made["secret"].encode(), f"{stale_t}.".encode() + request.body, hashlib.sha256)
        stale = await http.post(
            hooks.receiver.url(f"/verify/{name}"),
            content=request.body,
            headers={"Shop-Signature": f"t={stale_t},v1={stale_sig.hexdigest()}"},
        )
        assert stale.status_code == 400
    assert not verify("whsec_someone-else", request.headers["shop-signature"], request.body)

    [delivery] = await hooks.settled(made["id"])
    assert delivery["event_id"] == str(event.id) and delivery["event_type"] == "product.updated"
    assert (
        delivery["status"] == "succeeded" and delivery["response_code"] == 200 and delivery["attempts"] == 1
    )
    assert isinstance(delivery["duration_ms"], int) and delivery["created_at"]
    assert await hooks.deliveries(other["id"]) == [], "an endpoint whose patterns do not match gets nothing"


async def test_a_rotated_secret_signs_beside_the_old_one_for_the_overlap(hooks: Hooks) -> None:
    name = _name()
    made = await hooks.register(f"/ok/{name}", ["product.*"])
    rotated = await hooks.client.post(f"/admin/webhooks/{made['id']}/rotate-secret", headers=hooks.admin)
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["secret"]
    assert new != made["secret"] and rotated.json()["previous_secret_expires_at"]
    await hooks.publish()
    first = (await hooks.received(f"/ok/{name}"))[0]
    header = first.headers["shop-signature"]
    assert header.count("v1=") == 2
    assert verify(new, header, first.body) and verify(made["secret"], header, first.body)

    again = await hooks.client.post(
        f"/admin/webhooks/{made['id']}/rotate-secret", json={"overlap_seconds": 0}, headers=hooks.admin
    )
    newest = again.json()["secret"]
    await hooks.publish()
    second = (await hooks.received(f"/ok/{name}", 2))[1]
    assert second.headers["shop-signature"].count("v1=") == 1
    assert verify(newest, second.headers["shop-signature"], second.body)
    assert not verify(new, second.headers["shop-signature"], second.body)


async def test_a_receiver_failing_three_times_gets_the_event_acknowledged_once_and_every_attempt_is_kept(
    hooks: Hooks,
) -> None:
    name = _name()
    made = await hooks.register(f"/flaky/{name}/3", ["product.*"])
    event = await hooks.publish()
    [delivery] = await hooks.settled(made["id"])
    assert (
        delivery["status"] == "succeeded" and delivery["attempts"] == 4 and delivery["response_code"] == 200
    )
    got = hooks.receiver.to(f"/flaky/{name}/3")
    assert [r.answered for r in got] == [500, 500, 500, 200], "acknowledged once, never sent after"
    assert {r.headers["shop-event-id"] for r in got} == {str(event.id)}
    assert len({r.body for r in got}) == 1, "every attempt POSTs the same body"

    detail = await hooks.client.get(
        f"/admin/webhooks/{made['id']}/deliveries/{delivery['id']}", headers=hooks.admin
    )
    log = detail.json()["attempt_log"]
    assert [a["response_code"] for a in log] == [500, 500, 500, 200]
    assert [a["succeeded"] for a in log] == [False, False, False, True]
    assert log[0]["response_body"] == "x" * 1024, "the answer is kept truncated"
    assert log[0]["error"] == "answered 500" and log[-1]["response_body"] == "thanks"
    assert all(isinstance(a["duration_ms"], int) for a in log)
    assert Envelope.model_validate_json(detail.json()["payload"]).id == event.id
    # back-off: no retry came before its doubling wait (base 0.1 s) was over; a loaded machine
    # only adds to each gap, so the gaps themselves need not grow
    gaps = [b.at - a.at for a, b in itertools.pairwise(got)]
    assert all(gap >= 0.1 * 2**i for i, gap in enumerate(gaps)), gaps
    endpoint = (await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin)).json()
    assert endpoint["consecutive_failures"] == 0, "a success ends the run of failures"


async def test_a_hanging_endpoint_does_not_delay_a_healthy_one(hooks: Hooks) -> None:
    name = _name()
    hanging = await hooks.register(f"/hang/{name}", ["product.*"])
    await hooks.register(f"/ok/{name}", ["product.*"])
    delays: list[float] = []
    for _ in range(12):  # over about two of the hanging endpoint's timeouts
        sent = time.monotonic()
        await hooks.publish()
        got = await hooks.received(f"/ok/{name}", len(delays) + 1)
        delays.append(got[-1].at - sent)
        await asyncio.sleep(0.2)
    # meanwhile the hanging endpoint holds its two slots, each for the whole timeout
    assert len(hooks.receiver.to(f"/hang/{name}")) >= 1
    print(
        f"\nhealthy endpoint's delay beside a hanging one: max {max(delays) * 1000:.0f} ms, "
        f"median {sorted(delays)[len(delays) // 2] * 1000:.0f} ms (timeout {TIMEOUT} s)"
    )
    assert max(delays) < TIMEOUT / 2, delays
    rows = await hooks.deliveries(hanging["id"])
    attempted = [r for r in rows if r["attempts"]]
    assert attempted and all(r["status"] == "pending" for r in rows), rows
    assert all(r["last_error"] == f"no answer within {TIMEOUT:g} s" for r in attempted), attempted
    assert len(hooks.receiver.to(f"/hang/{name}")) <= 2 * (len(attempted) + 1), "two at a time at most"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:8080/hook",
        "http://0.0.0.0/",
        "http://[::ffff:10.0.0.1]/",
        "http://10.1.2.3/",
        "http://localhost:8000/",
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://0x7f.1/",
        "http://[fe80::1%25eth0]/",
        "http://[fd00::1]/",
        "http://100.64.0.1/",  # carrier-grade NAT: not public either
        "http://internal.example/hook",  # the injected resolver says 10.20.30.40
        "http://metadata.example/",  # ... and 169.254.169.254 plus a public address
        "file:///etc/passwd",
        "gopher://93.184.216.34/",
    ],
)
async def test_targets_in_private_ranges_are_refused(hooks: Hooks, url: str) -> None:
    names = {"internal.example": ["10.20.30.40"], "metadata.example": ["93.184.216.34", "169.254.169.254"]}

    async def resolve(host: str, port: int) -> list[str]:
        return names.get(host) or await system_resolve(host, port)

    wh = hooks.ctx.state.webhooks
    wh.allow_private, wh.resolve = False, resolve
    refused = await hooks.client.post(
        "/admin/webhooks", json={"url": url, "events": ["#"]}, headers=hooks.admin
    )
    body = assert_problem(refused, 422)
    assert [e["field"] for e in body["errors"]] == ["url"], body
    listed = (await hooks.client.get("/admin/webhooks", headers=hooks.admin)).json()
    assert listed["total"] == 0


async def test_a_name_rebound_to_loopback_after_registration_is_not_connected_to(hooks: Hooks) -> None:
    name = _name()
    answers = {"hooks.example": ["93.184.216.34"]}

    async def resolve(host: str, port: int) -> list[str]:
        return answers[host]

    wh = hooks.ctx.state.webhooks
    wh.allow_private, wh.resolve = False, resolve
    resp = await hooks.client.post(
        "/admin/webhooks",
        json={"url": f"http://hooks.example:{hooks.receiver.port}/ok/{name}", "events": ["product.*"]},
        headers=hooks.admin,
    )
    assert resp.status_code == 201, resp.text
    answers["hooks.example"] = ["127.0.0.1"]  # the attacker's DNS now points inside
    await hooks.publish()

    async def refused() -> dict[str, Any]:
        rows = await hooks.deliveries(resp.json()["id"])
        assert len(rows) == 1 and rows[0]["attempts"] >= 1, rows
        return rows[0]

    row = await eventually(refused)
    assert "refused to connect" in row["last_error"] and "loopback" in row["last_error"], row
    assert row["response_code"] is None
    await asyncio.sleep(0.3)
    assert hooks.receiver.to(f"/ok/{name}") == []


async def test_redirects_are_not_followed(hooks: Hooks) -> None:
    name = _name()
    made = await hooks.register(f"/redirect/{name}", ["product.*"])
    await hooks.publish()

    async def tried() -> dict[str, Any]:
        rows = await hooks.deliveries(made["id"])
        assert len(rows) == 1 and rows[0]["attempts"] >= 1, rows
        return rows[0]

    row = await eventually(tried)
    assert row["response_code"] == 307 and "redirects are not followed" in row["last_error"]
    assert hooks.receiver.to(f"/ok/{name}") == []


async def test_redeliver_sends_a_delivery_again(hooks: Hooks) -> None:
    name = _name()
    made = await hooks.register(f"/ok/{name}", ["product.*"])
    event = await hooks.publish()
    [delivery] = await hooks.settled(made["id"])
    again = await hooks.client.post(
        f"/admin/webhooks/{made['id']}/deliveries/{delivery['id']}/redeliver", headers=hooks.admin
    )
    assert again.status_code == 202 and again.json()["status"] == "pending", again.text
    got = await hooks.received(f"/ok/{name}", 2)
    assert [r.headers["shop-event-id"] for r in got] == [str(event.id)] * 2

    async def twice() -> None:
        rows = await hooks.deliveries(made["id"])
        assert len(rows) == 1 and rows[0]["status"] == "succeeded" and rows[0]["attempts"] == 2, rows

    await eventually(twice)
    unknown = await hooks.client.post(
        f"/admin/webhooks/{made['id']}/deliveries/{uuid.uuid4()}/redeliver", headers=hooks.admin
    )
    assert_problem(unknown, 404)
    customer = await hooks.client.post(
        f"/admin/webhooks/{made['id']}/deliveries/{delivery['id']}/redeliver", headers=hooks.keys.bearer()
    )
    assert_problem(customer, 403)


@pytest_asyncio.fixture
async def admin_socket(infra: Infra, keys: TestKeys) -> AsyncIterator[list[tuple[str, Any]]]:
    """A real realtime service on the run's exchange and an admin's socket on it; yields what it hears."""
    settings = settings_for(
        RealtimeSettings,
        infra,
        keys,
        events_queue_prefix=f"{infra.queue_prefix}{uuid.uuid4().hex[:6]}.",
        redis_prefix=f"{infra.redis_prefix}{uuid.uuid4().hex[:6]}:",
    )
    heard: list[tuple[str, Any]] = []
    async with serve_app(create_realtime(settings)) as url:
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("*")
        async def record(event: str, data: Any = None) -> None:
            heard.append((event, data))

        await sio.connect(
            url, auth={"token": keys.mint(role="admin")}, transports=["websocket"], wait_timeout=10
        )
        try:
            yield heard
        finally:
            await sio.disconnect()


async def test_fifteen_failures_in_a_row_disable_the_endpoint_and_admins_hear_it_live(
    hooks: Hooks, admin_socket: list[tuple[str, Any]]
) -> None:
    name = _name()
    dead = await hooks.register(f"/down/{name}", ["product.*"], description="old ERP")
    watcher = await hooks.register(f"/ok/{name}-watcher", ["webhook.disabled"])
    await hooks.publish()

    async def disabled() -> dict[str, Any]:
        row = (await hooks.client.get(f"/admin/webhooks/{dead['id']}", headers=hooks.admin)).json()
        assert row["active"] is False, row
        return dict(row)

    row = await eventually(disabled, timeout=20)
    assert row["consecutive_failures"] == 15 and row["disabled_at"]
    assert "15 failed attempts in a row" in row["disabled_reason"] and "503" in row["disabled_reason"]
    attempts = sum(r["attempts"] for r in await hooks.deliveries(dead["id"]))
    assert attempts == 15

    async def heard() -> dict[str, Any]:
        told = [data for event, data in admin_socket if event == "webhook:disabled"]
        assert told, [event for event, _ in admin_socket]
        return dict(told[0])

    told = await heard_eventually(heard)
    assert told["data"]["id"] == dead["id"] and told["data"]["consecutive_failures"] == 15
    assert told["data"]["description"] == "old ERP" and told["room"] == "admins"
    # and an integrator subscribed to webhook.disabled gets it as a webhook too
    [notice] = await hooks.received(f"/ok/{name}-watcher")
    assert Envelope.from_bytes(notice.body).data["id"] == dead["id"]

    # nothing more is tried while it is off; redeliver says why not; turning it on starts afresh
    await asyncio.sleep(0.5)
    assert sum(r["attempts"] for r in await hooks.deliveries(dead["id"])) == 15
    first = (await hooks.deliveries(dead["id"]))[0]
    refused = await hooks.client.post(
        f"/admin/webhooks/{dead['id']}/deliveries/{first['id']}/redeliver", headers=hooks.admin
    )
    assert_problem(refused, 409)
    back = await hooks.client.patch(
        f"/admin/webhooks/{dead['id']}", json={"active": True}, headers=hooks.admin
    )
    assert back.json()["active"] is True and back.json()["consecutive_failures"] == 0
    assert back.json()["disabled_at"] is None
    del watcher


async def heard_eventually(check: Any) -> dict[str, Any]:
    result: dict[str, Any] = await eventually(check, timeout=15)
    return result


async def test_two_replicas_send_each_delivery_once_and_keep_to_the_endpoints_budget(
    hooks: Hooks, infra: Infra, keys: TestKeys
) -> None:
    """A second notifications process on the same database and queue: both consume and both send."""
    name = _name()
    made = await hooks.register(f"/slow/{name}", ["product.*"])
    async with running_app(create_app(_settings(infra, keys))):
        events = [await hooks.publish() for _ in range(24)]
        await hooks.settled(made["id"], count=24, timeout=30)
    got = hooks.receiver.to(f"/slow/{name}")
    assert sorted(r.headers["shop-event-id"] for r in got) == sorted(str(e.id) for e in events)
    most = hooks.receiver.most_busy[name]
    print(f"\nat most {most} POSTs at once to one endpoint with two replicas (budget 2)")
    assert most <= 2, "the budget is the endpoint's, whichever replica sends"


async def test_a_delivery_still_refused_after_the_retry_window_is_failed_and_can_be_redelivered(
    hooks: Hooks,
) -> None:
    name = _name()
    made = await hooks.register(f"/down/{name}", ["product.*"])
    settings = hooks.ctx.settings
    settings.webhook_retry_for = 0.6  # this app's WEBHOOK_RETRY_FOR, for this test (3 days by default)
    try:
        await hooks.publish()
        [failed] = await hooks.settled(made["id"])
    finally:
        settings.webhook_retry_for = 3 * 24 * 3600.0
    assert failed["status"] == "failed" and failed["response_code"] == 503
    assert 2 <= failed["attempts"] < 15 and failed["next_attempt_at"] is None, failed
    endpoint = (await hooks.client.get(f"/admin/webhooks/{made['id']}", headers=hooks.admin)).json()
    assert endpoint["active"] is True and endpoint["consecutive_failures"] == failed["attempts"]
    tried = len(hooks.receiver.to(f"/down/{name}"))
    await asyncio.sleep(0.5)
    assert len(hooks.receiver.to(f"/down/{name}")) == tried, "a failed delivery is not tried again"

    again = await hooks.client.post(
        f"/admin/webhooks/{made['id']}/deliveries/{failed['id']}/redeliver", headers=hooks.admin
    )
    assert again.status_code == 202 and again.json()["status"] == "pending"
    await hooks.received(f"/down/{name}", tried + 1)


async def test_an_answer_holding_a_nul_byte_is_recorded(hooks: Hooks) -> None:
    """PostgreSQL text cannot hold NUL: the attempt is kept without it instead of failing to be kept."""
    name = _name()
    made = await hooks.register(f"/nul/{name}", ["product.*"])
    await hooks.publish()
    [row] = await hooks.settled(made["id"])
    assert row["status"] == "succeeded" and row["attempts"] == 1
    detail = await hooks.client.get(
        f"/admin/webhooks/{made['id']}/deliveries/{row['id']}", headers=hooks.admin
    )
    assert detail.json()["attempt_log"][0]["response_body"] == "ok thanks"


async def test_an_event_the_broker_delivers_twice_is_posted_once(hooks: Hooks) -> None:
    name = _name()
    made = await hooks.register(f"/ok/{name}", ["product.*"])
    event = await hooks.publish()
    await hooks.ctx.bus.publish(event)  # as a broker redelivers after a lost acknowledgement
    await hooks.received(f"/ok/{name}")
    await asyncio.sleep(0.5)
    assert [r.headers["shop-event-id"] for r in hooks.receiver.to(f"/ok/{name}")] == [str(event.id)]
    assert len(await hooks.deliveries(made["id"])) == 1
