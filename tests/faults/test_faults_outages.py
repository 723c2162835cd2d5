"""Outages as a client and an operator see them: every refusal says when to retry, and the logs
say "down" once and "back" once per part, with tracebacks left for bugs.

Each test breaks one dependency of the running stack (Redis, the identity service, a
service that stops answering, RabbitMQ, PostgreSQL restarting), keeps customers' traffic
going through the outage, and checks what they got back and what every part logged.
The figures (answers by status, seconds until served again) are printed with ``-s``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx
import pytest

from libs.common.testing import eventually
from tests.e2e.shopper import ADDRESS, admin, customer, make_product
from tests.faults.conftest import DB_SERVICES, Faults

pytestmark = pytest.mark.e2e

OUTAGE = 4.0  # seconds each dependency stays away
_STDLIB_LINE = re.compile(r"^(?P<logger>[\w.]+) (?P<level>DEBUG|INFO|WARNING|ERROR|CRITICAL) ")


@dataclass
class Answers:
    """What customers got during an outage and how long until they were served again."""

    codes: Counter[int] = field(default_factory=Counter)
    without_retry_after: list[str] = field(default_factory=list)
    recovered_after: float | None = None

    def add(self, what: str, resp: httpx.Response) -> None:
        self.codes[resp.status_code] += 1
        if resp.status_code in (503, 504) and "retry-after" not in resp.headers:
            self.without_retry_after.append(f"{what}: {resp.status_code}")

    def report(self, fault: str) -> None:
        print(
            f"\nFIGURES {fault}: answers {dict(sorted(self.codes.items()))}, "
            f"503/504 without Retry-After {len(self.without_retry_after)}, "
            f"served again {self.recovered_after:.1f} s after the fault ended"
        )


class LogWindow:
    """Every part's log lines written from now on."""

    def __init__(self, faults: Faults, parts: list[str] | None = None) -> None:
        self.faults = faults
        self.parts = parts or list(faults.stack.procs)
        self.offsets = {p: _size(faults, p) for p in self.parts}

    def lines(self, part: str) -> list[str]:
        with self.faults.stack.log_path(part).open("rb") as f:
            f.seek(self.offsets[part])
            return f.read().decode(errors="replace").splitlines()

    def events(self, part: str) -> list[dict[str, Any]]:
        out = []
        for line in self.lines(part):
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    out.append(json.loads(line))
        return out

    def noise(self) -> dict[str, dict[str, int]]:
        """Per part: tracebacks, error lines, warnings and the outage lines, counted."""
        figures = {}
        for part in self.parts:
            lines, events = self.lines(part), self.events(part)
            stdlib = [m for line in lines if (m := _STDLIB_LINE.match(line))]
            figures[part] = {
                "tracebacks": sum("Traceback (most recent call last)" in line for line in lines),
                "errors": sum(e.get("level") in ("error", "critical") for e in events)
                + sum(m["level"] in ("ERROR", "CRITICAL") for m in stdlib),
                "warnings": sum(e.get("level") == "warning" for e in events)
                + sum(m["level"] == "WARNING" for m in stdlib),
                "down": sum(e.get("event") == "dependency_unavailable" for e in events),
                "back": sum(e.get("event") == "dependency_recovered" for e in events),
            }
        return figures

    def outage_lines(self, part: str, event: str, dependency: str) -> list[dict[str, Any]]:
        return [e for e in self.events(part) if e.get("event") == event and e.get("dependency") == dependency]


def _size(faults: Faults, part: str) -> int:
    path = faults.stack.log_path(part)
    return path.stat().st_size if path.exists() else 0


async def keep_asking(
    answers: Answers, requests: Callable[[], dict[str, Awaitable[httpx.Response]]], seconds: float
) -> None:
    """Customers' requests, one round after another, for ``seconds``."""
    until = time.monotonic() + seconds
    while time.monotonic() < until:
        for what, call in requests().items():
            answers.add(what, await call)
        await asyncio.sleep(0.2)


async def served_again(
    answers: Answers,
    requests: Callable[[], dict[str, Awaitable[httpx.Response]]],
    since: float,
    timeout: float = 30,
) -> None:
    async def every_request_served() -> None:
        for what, call in requests().items():
            resp = await call
            assert resp.status_code < 300, f"{what}: {resp.status_code} {resp.text}"

    await eventually(every_request_served, timeout=timeout, interval=0.1)
    answers.recovered_after = time.monotonic() - since


def assert_logged_like_an_outage(
    window: LogWindow, dependency: str, parts: list[str], *, each_part_warns: bool = False
) -> None:
    """No traceback, no error line; per part at most one warning that it is down, and one line that it is back."""
    noise = window.noise()
    print(f"FIGURES logs {dependency}: {noise}")
    for part in parts:
        if each_part_warns:
            assert window.outage_lines(part, "dependency_unavailable", dependency), (part, window.lines(part))
        assert noise[part]["tracebacks"] == 0, (part, window.lines(part))
        assert noise[part]["errors"] == 0, (part, window.lines(part))
        down = window.outage_lines(part, "dependency_unavailable", dependency)
        back = window.outage_lines(part, "dependency_recovered", dependency)
        assert len(down) <= 1, (part, down)
        assert len(back) == len(down), (part, down, back)
        assert noise[part]["warnings"] == len(down), (part, window.lines(part))


async def no_more_outage_lines(window: LogWindow, dependency: str, parts: list[str]) -> None:
    """Recovery is noticed by each part on its own (a probe, a relay's next poll): wait for the lines."""

    async def each_part_said_back() -> None:
        for part in parts:
            down = window.outage_lines(part, "dependency_unavailable", dependency)
            back = window.outage_lines(part, "dependency_recovered", dependency)
            assert len(back) >= len(down), (part, down, back)

    await eventually(each_part_said_back, timeout=20, interval=0.2)


# --- Retry-After on every 503 and 504 ----------------------------------------------------------


async def test_redis_outage_refuses_with_retry_after_and_logs_it_once_per_part(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    buyer = await customer(gw, "retry-redis")

    def requests() -> dict[str, Awaitable[httpx.Response]]:
        return {
            "me": gw.get("/users/me", headers=buyer.auth),
            "cart": gw.get("/cart", headers=buyer.auth),
            "sign in": gw.post("/auth/login", json={"email": buyer.email, "password": buyer.password}),
        }

    window = LogWindow(faults)
    answers = Answers()
    await faults.host.cut([faults.redis])
    await keep_asking(answers, requests, OUTAGE)
    restored = time.monotonic()
    await faults.host.restore([faults.redis])
    await served_again(answers, requests, restored)
    answers.report("redis")

    assert answers.codes[503] > 0 and set(answers.codes) <= {200, 503}, answers.codes
    assert answers.without_retry_after == [], answers.without_retry_after
    parts = [p for p in window.parts if window.outage_lines(p, "dependency_unavailable", "redis")]
    assert "gateway" in parts and "auth" in parts, window.noise()
    await no_more_outage_lines(window, "redis", parts)
    assert_logged_like_an_outage(window, "redis", parts)


async def test_identity_service_out_of_reach_is_a_503_with_retry_after(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    """A service that starts while auth is down cannot fetch the signing keys: it refuses, saying when to retry."""
    buyer = await customer(gw, "retry-jwks")

    def requests() -> dict[str, Awaitable[httpx.Response]]:
        return {"cart": gw.get("/cart", headers=buyer.auth), "me": gw.get("/users/me", headers=buyer.auth)}

    answers = Answers()
    faults.stack.stop("auth", sig=signal.SIGKILL)
    await faults.stack.restart("cart")  # forgets the keys it had
    await keep_asking(answers, requests, 1.0)
    restored = time.monotonic()
    faults.stack.start("auth")
    await faults.stack.wait_ready("auth")
    await served_again(answers, requests, restored)
    answers.report("identity service")

    assert answers.codes[503] > 0 and set(answers.codes) <= {200, 503}, answers.codes
    assert answers.without_retry_after == [], answers.without_retry_after


async def test_a_service_that_stops_answering_is_a_504_with_retry_after(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    buyer = await customer(gw, "retry-slow")
    assert (await gw.get("/cart", headers=buyer.auth)).status_code == 200
    answers = Answers()
    cart = faults.stack.procs["cart"]
    os.kill(cart.pid, signal.SIGSTOP)  # its socket still accepts connections; nothing answers
    try:
        answers.add("cart", await gw.get("/cart", headers=buyer.auth))
    finally:
        os.kill(cart.pid, signal.SIGCONT)
    restored = time.monotonic()
    await served_again(answers, lambda: {"cart": gw.get("/cart", headers=buyer.auth)}, restored)
    answers.report("cart stopped answering")
    assert answers.codes[504] == 1, answers.codes
    assert answers.without_retry_after == [], answers.without_retry_after


# --- RabbitMQ and PostgreSQL restarts: one warning, one recovery line, no traceback ---------------


async def test_broker_restart_is_one_warning_and_one_recovery_line_per_part(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=10, price=900)
    buyer = await customer(gw, "broker-restart")
    items = [{"product_id": product["id"], "quantity": 1}]

    def requests() -> dict[str, Awaitable[httpx.Response]]:
        return {
            "browse": gw.get("/products", params={"q": uuid.uuid4().hex}),
            "cart": gw.get("/cart", headers=buyer.auth),
            "orders": gw.get("/orders", headers=buyer.auth),
        }

    window = LogWindow(faults)
    answers = Answers()
    await faults.host.cut(faults.amqp)
    order_id = (await buyer.place_order(items=items)).json()["id"]  # its events wait in the outbox
    await keep_asking(answers, requests, OUTAGE)
    restored = time.monotonic()
    await faults.host.restore(faults.amqp)
    await buyer.pay(order_id)  # payments hears of the order once the broker is back
    await buyer.wait_status(order_id, "paid", timeout=40)
    answers.recovered_after = time.monotonic() - restored
    answers.report("rabbitmq (order paid again)")

    assert set(answers.codes) == {200}, answers.codes  # the broker being away refuses nobody
    parts = [p for p in window.parts if p != "gateway"]
    await no_more_outage_lines(window, "rabbitmq", parts)
    assert_logged_like_an_outage(window, "rabbitmq", parts, each_part_warns=True)


async def terminate_backends(faults: Faults) -> int:
    """What a PostgreSQL restart does to every open connection of this stack: 57P01, admin shutdown."""
    conn = await asyncpg.connect(
        faults.direct.pg_dsn.replace("postgresql+asyncpg://", "postgresql://"), timeout=10
    )
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = ANY($1::text[])"
                " AND pid <> pg_backend_pid()",
                [f"{faults.direct.db_prefix}{s}" for s in DB_SERVICES],
            )
        )
    finally:
        await conn.close()


async def test_database_restart_is_one_warning_and_one_recovery_line_per_part(
    faults: Faults, gw: httpx.AsyncClient
) -> None:
    boss = await admin(gw)
    product = await make_product(gw, boss, stock=10, price=900)
    buyer = await customer(gw, "db-restart")
    items = [{"product_id": product["id"], "quantity": 1}]

    def requests() -> dict[str, Awaitable[httpx.Response]]:
        return {
            "browse": gw.get("/products", params={"q": uuid.uuid4().hex}),
            "cart": gw.get("/cart", headers=buyer.auth),
            "orders": gw.get("/orders", headers=buyer.auth),
            "order": gw.post(
                "/orders",
                json={"shipping_address": ADDRESS, "items": items},
                headers={**buyer.auth, "Idempotency-Key": uuid.uuid4().hex},
            ),
        }

    window = LogWindow(faults)
    answers = Answers()
    assert await terminate_backends(faults) > 0  # the server goes down: every connection is told so...
    await faults.host.cut(faults.pg.values())  # ...and new ones are refused until it is back
    await keep_asking(answers, requests, OUTAGE)
    restored = time.monotonic()
    await faults.host.restore(faults.pg.values())
    await served_again(answers, requests, restored)
    answers.report("postgresql restart")

    assert answers.codes[503] > 0 and set(answers.codes) <= {200, 201, 503}, answers.codes
    assert answers.without_retry_after == []
    order = (await buyer.place_order(items=items)).json()["id"]
    await buyer.pay(order)
    await buyer.wait_status(order, "paid")
    parts = [p for p in window.parts if p in DB_SERVICES]
    await no_more_outage_lines(window, "postgresql", parts)
    assert_logged_like_an_outage(window, "postgresql", parts)
