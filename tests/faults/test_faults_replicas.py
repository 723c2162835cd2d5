"""Two replicas of every service under load, one of each killed with SIGKILL: nothing a client was told is lost.

``make up REPLICAS=2`` is run as it is (scripts/up.py: two processes of each service, one
gateway spreading over them). Customers with a socket each place and pay for orders
through the gateway while one replica of every service is killed at once; the supervisor
starts them again after its back-off, as it would in production. Then:

- every order a customer was answered 201 for exists once, is paid, and took its stock once;
- every socket was told once of each of its orders being paid (a socket whose realtime
  replica died reconnects through the gateway to the other and resumes with its last
  numbers, so what it missed is replayed, not lost, and nothing comes twice);
- no request failed but with a 503 problem carrying ``Retry-After`` (the client then came
  back, as the header says), or the 425 and 409 the API documents for "come back shortly".

Bounded: a fixed number of customers and orders, a deadline on each step, loopback only;
everything it started is stopped, and its databases, keys and queues removed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio

from libs.common.parts import PARTS, SERVICES
from libs.common.testing.infra import RETRY_DELAYS, Infra
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD, Shopper, make_product, new_email

ROOT = Path(__file__).resolve().parents[2]
REPLICA_STEP = 1000  # scripts/up.py's REPLICA_PORT_STEP
CUSTOMERS = 6
ORDERS_EACH = 3
COME_BACK = {503, 425}
# make up seeds pricing with one shipping zone: the shop's country, the US
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Main St",
    "city": "Springfield",
    "postal_code": "12345",
    "country": "US",
}  # answers that say "try again shortly" (with Retry-After)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def healed() -> None:
    """This module runs no proxied fault stack: shadows the package's autouse fixture that starts one."""


def _free_offset() -> int:
    ports = [p.port for p in PARTS] + [p.port + REPLICA_STEP for p in SERVICES]

    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    for _ in range(50):
        offset = random.randrange(20000, 50000, 10)
        if all(free(p + offset) for p in ports):
            return offset
    raise RuntimeError("no free block of ports")


@dataclass
class Shop:
    """``scripts/up.py --replicas 2`` on this run's servers."""

    proc: subprocess.Popen[bytes]
    log: Path
    offset: int

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{8000 + self.offset}"

    def replica_url(self, part: str, index: int) -> str:
        port = next(p.port for p in PARTS if p.name == part) + self.offset + index * REPLICA_STEP
        return f"http://127.0.0.1:{port}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pid(self, name: str) -> int:
        """The newest process of ``name`` (``catalog.1``) the supervisor started."""
        return int(re.findall(rf"^\S+ {re.escape(name)}\s+\| started \(pid (\d+)", self.text(), re.M)[-1])

    def tail(self, lines: int = 80) -> str:
        return "\n".join(self.text().splitlines()[-lines:])

    async def wait_ready(self, timeout: float) -> None:
        # each replica directly: a gateway asked meanwhile would set aside those still starting
        urls = [self.replica_url(p.name, i) + "/readyz" for p in SERVICES for i in (0, 1)]
        urls.append(self.gateway + "/healthz")
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                if self.proc.poll() is not None:
                    pytest.fail(f"make up exited with {self.proc.returncode}:\n{self.tail()}")
                answers = await asyncio.gather(*(client.get(u) for u in urls), return_exceptions=True)
                if all(isinstance(a, httpx.Response) and a.status_code == 200 for a in answers):
                    return
                if time.monotonic() > deadline:
                    down = [
                        u for u, a in zip(urls, answers, strict=True) if getattr(a, "status_code", 0) != 200
                    ]
                    pytest.fail(f"not ready after {timeout} s: {down}\n{self.tail()}")
                await asyncio.sleep(0.3)


def _start_up(env: dict[str, str], log: Path, offset: int) -> subprocess.Popen[bytes]:
    """``make up REPLICAS=2`` as scripts/up.py runs it, on this run's servers (already checked)."""
    return subprocess.Popen(
        [
            sys.executable,
            "scripts/up.py",
            "--skip-infra",
            "--seed-products",
            "0",
            "--replicas",
            "2",
            "--port-offset",
            str(offset),
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


@pytest_asyncio.fixture
async def shop(infra: Infra, tmp_path: Path) -> AsyncIterator[Shop]:
    run = Infra(pg_dsn=infra.pg_dsn, redis_url=infra.redis_url, amqp_url=infra.amqp_url)
    offset, log = _free_offset(), tmp_path / "up.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
    env.update(run.env())
    env.update(
        {
            "INTERNAL_API_TOKEN": "test-internal-token-replicas",
            "ADMIN_EMAIL": ADMIN_EMAIL,
            "ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PAYMENT_PROVIDER": "fake",
            "EMAIL_BACKEND": "log",
            "LOG_JSON": "false",
            "DB_POOL_SIZE": "2",
            "OUTBOX_POLL_INTERVAL": "0.5",
            # a key whose request died with its orders replica is taken over once its lease lapses
            "PLACEMENT_LEASE": "3",
            "EVENT_RETRY_DELAYS": "[" + ",".join(str(d) for d in RETRY_DELAYS) + "]",
            "RATE_LIMITS": '{"default": {"rate": 1000, "burst": 2000}, "auth": {"rate": 500, "burst": 1000}}',
        }
    )
    proc = _start_up(env, log, offset)
    handle = Shop(proc=proc, log=log, offset=offset)
    try:
        yield handle
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        # a part the supervisor could not stop (each runs in a session of its own)
        for pid in {int(p) for p in re.findall(r"started \(pid (\d+)", handle.text())}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        await run.cleanup()


@dataclass
class Client:
    """Requests through the gateway as a well-behaved client sends them: a 'come back' is followed."""

    gw: httpx.AsyncClient
    come_backs: collections.Counter[str] = field(default_factory=collections.Counter)
    failures: list[str] = field(default_factory=list)

    async def send(self, method: str, path: str, *, ok: tuple[int, ...], **kw: Any) -> httpx.Response:
        deadline = time.monotonic() + 25
        while True:
            try:
                resp = await self.gw.request(method, path, **kw)
            except httpx.HTTPError as exc:
                self.failures.append(f"{method} {path}: {type(exc).__name__} {exc}")
                raise
            if resp.status_code in ok:
                return resp
            again = resp.status_code in COME_BACK or (
                resp.status_code == 409 and "retry-after" in resp.headers
            )
            if not again:
                self.failures.append(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
                raise AssertionError(self.failures[-1])
            if "retry-after" not in resp.headers or not resp.headers["content-type"].startswith(
                "application/problem+json"
            ):
                self.failures.append(f"{method} {path}: {resp.status_code} without Retry-After or problem")
            self.come_backs[f"{resp.status_code} {method} {path.split('/')[1]}"] += 1
            if time.monotonic() > deadline:
                self.failures.append(f"{method} {path}: still {resp.status_code} after 25 s")
                raise AssertionError(self.failures[-1])
            # as the header says, capped: the test's clock is short
            await asyncio.sleep(min(float(resp.headers.get("retry-after", 1)), 0.5))


@dataclass
class Customer:
    shopper: Shopper
    client: Client
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> order id
    paid: set[str] = field(default_factory=set)
    told: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    last_seq: dict[str, int] = field(default_factory=dict)
    sio: socketio.AsyncClient = field(
        default_factory=lambda: socketio.AsyncClient(
            reconnection=True, reconnection_delay=0.2, reconnection_delay_max=1, reconnection_attempts=0
        )
    )
    connects: int = 0
    # Socket.IO's default: long-polling first, then the upgrade, each request carrying the session's
    # id, which the gateway must send to the realtime replica holding that session
    transports: list[str] = field(default_factory=lambda: ["websocket"])

    async def connect(self, url: str) -> None:
        @self.sio.event
        async def connect() -> None:
            self.connects += 1

        @self.sio.on("*")
        async def any_event(event: str, data: Any = None) -> None:
            if event == "rooms:joined" and isinstance(data, dict):
                # where the rooms stood at connect: a room heard nothing in yet is resumable from there
                for room, seq in data["rooms"].items():
                    self.last_seq[room] = max(self.last_seq.get(room, 0), int(seq))
            elif isinstance(data, dict) and "seq" in data and "room" in data:
                self.told.append((event, data))
                self.last_seq[data["room"]] = max(self.last_seq.get(data["room"], 0), int(data["seq"]))

        def auth() -> dict[str, Any]:
            # at every (re)connect: the last number seen per room, so a gap is replayed
            creds: dict[str, Any] = {"token": self.shopper.token}
            if self.last_seq:
                creds["last_seq"] = dict(self.last_seq)
            return creds

        await self.sio.connect(
            url, auth=auth, transports=self.transports, socketio_path="socket.io", wait_timeout=10
        )

    async def buy(self, product_id: str) -> None:
        """Place one order (one key, however often it is sent) and pay for it."""
        key = uuid.uuid4().hex
        headers = {**self.shopper.auth, "Idempotency-Key": key}
        body = {"shipping_address": ADDRESS, "items": [{"product_id": product_id, "quantity": 1}]}
        placed = await self.client.send("POST", "/orders", ok=(201,), json=body, headers=headers)
        order_id = placed.json()["id"]
        self.accepted[key] = order_id
        intent = await self.client.send(
            "POST",
            "/payment/checkout",
            ok=(200, 201),
            json={"order_id": order_id, "payment_method": "pm_card_visa"},
            headers=self.shopper.auth,
        )
        await self.client.send(
            "POST",
            "/payment/verify",
            ok=(200,),
            json={"payment_intent_id": intent.json()["payment_intent_id"]},
            headers=self.shopper.auth,
        )
        self.paid.add(order_id)

    def told_of(self, event: str, order_id: str) -> list[dict[str, Any]]:
        return [d for e, d in self.told if e == event and d.get("data", {}).get("order_id") == order_id]


async def test_killing_one_replica_of_every_service_under_load_loses_and_doubles_nothing(shop: Shop) -> None:
    started = time.monotonic()
    await shop.wait_ready(timeout=90)
    ready_after = time.monotonic() - started
    ws_url = shop.gateway
    async with httpx.AsyncClient(base_url=shop.gateway, timeout=15) as gw:
        boss = await Shopper(gw, ADMIN_EMAIL, ADMIN_PASSWORD).login()
        product = await make_product(gw, boss, stock=1000, price=1500)
        customers = []
        for _ in range(CUSTOMERS):
            shopper = await Shopper(gw, new_email("replicas"), "Customer-pass-1").register()
            customers.append(Customer(shopper, Client(gw)))
        customers[0].transports = customers[1].transports = ["polling", "websocket"]
        await asyncio.gather(*(c.connect(ws_url) for c in customers))

        under_way = asyncio.Event()

        async def shopping(c: Customer) -> None:
            for _ in range(ORDERS_EACH):
                await c.buy(product["id"])
                if sum(len(x.paid) for x in customers) >= CUSTOMERS // 2:
                    under_way.set()

        load = [asyncio.create_task(shopping(c)) for c in customers]
        # once the first orders are through, one replica of every service dies at once (some
        # customers have heard nothing in their own room yet: they resume it from where it stood)
        waiter = asyncio.create_task(under_way.wait())
        await asyncio.wait([waiter, *load], return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        assert under_way.is_set(), [t.exception() for t in load if t.done()]
        # the sockets were spread over both realtime replicas
        for name in ("realtime.1", "realtime.2"):
            assert re.search(rf"{name}\s+\| .*WebSocket /socket.io/.*accepted", shop.text()), name
        killed = {p.name: shop.pid(f"{p.name}.1") for p in SERVICES}
        for pid in killed.values():
            os.kill(pid, signal.SIGKILL)
        killed_at = time.monotonic()
        async with asyncio.timeout(60):
            await asyncio.gather(*load)
        load_done = time.monotonic()

        failures = [f for c in customers for f in c.client.failures]
        assert not failures, failures
        # the supervisor said so, and started each again
        for name in killed:
            assert re.search(rf"{name}\.1\s+\| exited \(killed by SIGKILL\)", shop.text()), name

        # every accepted order exists once and is paid; the stock went once per order
        for c in customers:
            assert len(c.accepted) == ORDERS_EACH == len(set(c.accepted.values()))
            listed = await c.client.send("GET", "/orders", ok=(200,), headers=c.shopper.auth)
            mine = {o["id"]: o["status"] for o in listed.json()["items"]}
            assert set(mine) == set(c.accepted.values()), (mine, c.accepted)
            assert set(mine.values()) == {"paid"}, mine
        seen = await customers[0].client.send("GET", f"/products/{product['id']}", ok=(200,))
        assert seen.json()["stock"] == 1000 - CUSTOMERS * ORDERS_EACH

        # every socket was told of each of its orders being paid, once
        async def told_once() -> None:
            for c in customers:
                for order_id in c.accepted.values():
                    assert len(c.told_of("payment:succeeded", order_id)) == 1, (order_id, c.told)

        deadline = time.monotonic() + 15
        while True:
            try:
                await told_once()
                break
            except AssertionError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # a second telling would have come by now
        await told_once()
        for c in customers:
            ids = [d["event_id"] for _, d in c.told]
            assert len(ids) == len(set(ids)), "a notification reached a socket twice"
        # those whose realtime replica died came back through the gateway (to the other, or to it restarted)
        assert any(c.connects > 1 for c in customers)
        await asyncio.gather(*(c.sio.disconnect() for c in customers))

    come_backs = sum((c.client.come_backs for c in customers), collections.Counter())
    reconnected = sum(c.connects > 1 for c in customers)
    print(
        f"\nreplicas: ready after {ready_after:.1f} s; {CUSTOMERS * ORDERS_EACH} orders placed and paid, "
        f"load done {load_done - killed_at:.1f} s after the kill; come-backs {dict(come_backs)}; "
        f"{reconnected}/{CUSTOMERS} sockets reconnected"
    )
