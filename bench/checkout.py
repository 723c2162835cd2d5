"""Checkout under contention: many buyers of one variant against as many buyers of different products.

``make bench``'s race shows that a hot product is never oversold; this script asks what the hot
product costs. Every buyer places one order (one unit, ``POST /orders`` through the gateway, all
released at once) in three shapes, measured in the same run and interleaved over ``--rounds``, so
a busy machine slows each of them alike:

- **spread**: each buyer orders a product of their own (no two orders touch the same row);
- **hot**: every buyer orders the same variant, which has enough for all of them;
- **race**: every buyer orders the same variant, which has ``--units`` (fewer than the buyers):
  the rest are answered 409, and no unit may be sold twice.

The figure that matters is hot's orders/s against spread's (goal: spread within 1.5x of hot):
when they are close, a popular product does not make buyers queue behind each other's orders.

    python bench/checkout.py [--buyers 200] [--units 50] [--rounds 2] [--json PATH]

Needs ``make infra`` (or ``scripts/infra.py ensure``) first; starts every part as ``make up``
does, and removes its databases, keys and queues at the end. Exits 1 when a unit was oversold or
an answer other than 201/409 came back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measuring import Row, pct, run_and_report, session  # noqa: E402
from bench.stack import EXTRA_ENV, Bench, take_down  # noqa: E402
from libs.common.auth import INTERNAL_TOKEN_HEADER  # noqa: E402
from libs.common.config import CommonSettings  # noqa: E402
from libs.common.testing.infra import Infra, settings_for  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402
from services.orders.settings import OrdersSettings  # noqa: E402
from tests.e2e.shopper import ADDRESS, ADMIN_EMAIL, ADMIN_PASSWORD, admin, make_product  # noqa: E402
from tests.e2e.stack import PARTS, MailCatcher, Stack  # noqa: E402

CREATE_ADMIN = [sys.executable, "-m", "services.auth", "create-admin", "--email", ADMIN_EMAIL]
CREATE_ADMIN += ["--password", ADMIN_PASSWORD]


@dataclass
class Wave:
    """One shape's answers over every round."""

    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    statuses: list[int | str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    oversold: int = 0
    unaccounted: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    @property
    def failed(self) -> int:
        return sum(1 for s in self.statuses if s not in (201, 409))

    def figures(self) -> dict[str, Any]:
        return {
            "orders": len(self.latencies),
            "created": self.statuses.count(201),
            "conflicts": self.statuses.count(409),
            "failed": self.failed,
            "seconds": round(self.elapsed, 3),
            "orders_per_s": round(self.rate, 1),
            "p50_ms": round(pct(self.latencies, 0.5), 1),
            "p99_ms": round(pct(self.latencies, 0.99), 1),
            "oversold": self.oversold,
            "unaccounted": self.unaccounted,
            "other_statuses": sorted({str(s) for s in self.statuses} - {"201", "409"}),
            "first_problems": sorted(set(self.problems))[:3],
        }

    def said(self) -> str:
        f = self.figures()
        return (
            f"{f['orders_per_s']:.0f} orders/s ({f['created']} x 201, {f['conflicts']} x 409 in "
            f"{f['seconds']:.2f} s; p50 {f['p50_ms']:.0f} ms, p99 {f['p99_ms']:.0f} ms)"
            + (f"; {self.failed} failed: {', '.join(f['other_statuses'])}" if self.failed else "")
        )


async def products(gw: str, count: int, stock: int) -> list[dict[str, Any]]:
    """``count`` products with ``stock`` units each, made through the admin API (8 at a time)."""
    sem = asyncio.Semaphore(8)
    async with httpx.AsyncClient(base_url=gw, timeout=30) as http:
        boss = await admin(http)

        async def one() -> dict[str, Any]:
            async with sem:
                return await make_product(http, boss, stock=stock)

        return list(await asyncio.gather(*(one() for _ in range(count))))


async def wave(gw: str, tokens: list[str], product_ids: list[str], into: Wave) -> None:
    """Buyer i orders one unit of ``product_ids[i % len]``; every request is released at once."""
    async with session(len(tokens), base_url=gw) as s:
        go = asyncio.Event()

        async def buy(token: str, product_id: str) -> None:
            headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
            body = {"shipping_address": ADDRESS, "items": [{"product_id": product_id, "quantity": 1}]}
            await go.wait()
            t0 = time.perf_counter()
            try:
                async with s.post("/orders", json=body, headers=headers) as resp:
                    answer = await resp.read()
                    into.statuses.append(resp.status)
                    if resp.status not in (201, 409):
                        into.problems.append(answer.decode(errors="replace")[:300])
            except aiohttp.ClientError as exc:
                into.statuses.append(type(exc).__name__)
            into.latencies.append(time.perf_counter() - t0)

        # open the connections first: the measure is the orders, not TCP handshakes
        for _ in range(2):
            await asyncio.gather(*(s.get("/healthz") for _ in range(len(tokens))))
        tasks = [asyncio.create_task(buy(t, product_ids[i % len(product_ids)])) for i, t in enumerate(tokens)]
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        into.elapsed += time.perf_counter() - start


def cpu_seconds(pids: dict[str, int]) -> dict[str, float]:
    """Each part's CPU time so far (user + system), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[str, float] = {}
    for part, pid in pids.items():
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out[part] = (int(fields[11]) + int(fields[12])) / tick
    return out


async def reservations(catalog: str, token: str, product_ids: list[str], count: int, into: Wave) -> None:
    """Catalog alone: ``count`` reservations of one unit at once, straight to its internal route."""
    headers = {INTERNAL_TOKEN_HEADER: token}
    async with session(count, base_url=catalog, headers=headers) as s:
        go = asyncio.Event()

        async def one(i: int) -> None:
            body = {
                "order_id": str(uuid.uuid4()),
                "items": [{"product_id": product_ids[i % len(product_ids)], "quantity": 1}],
            }
            await go.wait()
            t0 = time.perf_counter()
            try:
                async with s.post("/internal/reservations", json=body) as resp:
                    answer = await resp.read()
                    into.statuses.append(201 if resp.status in (200, 201) else resp.status)
                    if resp.status not in (200, 201, 409):
                        into.problems.append(answer.decode(errors="replace")[:300])
            except aiohttp.ClientError as exc:
                into.statuses.append(type(exc).__name__)
            into.latencies.append(time.perf_counter() - t0)

        for _ in range(2):
            await asyncio.gather(*(s.get("/healthz") for _ in range(count)))
        tasks = [asyncio.create_task(one(i)) for i in range(count)]
        await asyncio.sleep(0.2)
        start = time.perf_counter()
        go.set()
        await asyncio.gather(*tasks)
        into.elapsed += time.perf_counter() - start


async def held(stack: Stack, product_id: str) -> tuple[int, int, int]:
    """(units left in catalog, units catalog holds for orders, units in orders not cancelled) of a product."""
    catalog = await asyncpg.connect(_dsn(settings_for(CatalogSettings, stack.infra).db_url), timeout=10)
    orders = await asyncpg.connect(_dsn(settings_for(OrdersSettings, stack.infra).db_url), timeout=10)
    try:
        pid = uuid.UUID(product_id)
        stock = await catalog.fetchval("SELECT stock FROM products WHERE id = $1", pid)
        reserved = await catalog.fetchval(
            "SELECT coalesce(sum(l.quantity), 0) FROM reservation_lines l JOIN reservations r "
            "ON r.order_id = l.order_id WHERE l.product_id = $1 AND r.status <> 'released'",
            pid,
        )
        ordered = await orders.fetchval(
            "SELECT coalesce(sum(i.quantity), 0) FROM order_items i JOIN orders o ON o.id = i.order_id "
            "WHERE i.product_id = $1 AND o.status <> 'cancelled'",
            pid,
        )
    finally:
        await catalog.close()
        await orders.close()
    return int(stock), int(reserved), int(ordered)


def _dsn(url: str) -> str:
    return url.replace("+asyncpg", "")


async def measure(bench: Bench, args: argparse.Namespace) -> tuple[list[Row], bool]:
    gw = bench.gw
    tokens = await bench.register(args.buyers)
    waves = {"spread": Wave(), "hot": Wave(), "race": Wave(), "catalog spread": Wave(), "catalog hot": Wave()}
    catalog_url = bench.stack.url("catalog")
    token = bench.stack.env("catalog")["INTERNAL_API_TOKEN"]
    pids = {p: bench.stack.procs[p].pid for p in PARTS}
    cpu: dict[str, dict[str, float]] = {name: {} for name in waves}
    for r in range(args.rounds):
        t0 = time.perf_counter()
        spread = await products(gw, args.buyers, stock=5)
        (hot,) = await products(gw, 1, stock=args.buyers)
        (race,) = await products(gw, 1, stock=args.units)  # fewer units than buyers
        print(f"  round {r + 1}: products made in {time.perf_counter() - t0:.1f} s", flush=True)
        # the order of the shapes turns each round, so none always runs on a machine warmed by another
        shapes = [("spread", [p["id"] for p in spread]), ("hot", [hot["id"]]), ("race", [race["id"]])]
        shapes = shapes[r % 3 :] + shapes[: r % 3]
        for name, ids in shapes:
            before = len(waves[name].statuses)
            c0 = cpu_seconds(pids)
            await wave(gw, tokens, ids, waves[name])
            await asyncio.sleep(2)  # the events the orders caused, consumed by the other parts
            c1 = cpu_seconds(pids)
            for part in c1:
                cpu[name][part] = cpu[name].get(part, 0.0) + c1[part] - c0.get(part, 0.0)
            load = os.getloadavg()[0]
            print(
                f"  round {r + 1} {name}: {waves[name].statuses[before:].count(201)} x 201, load {load:.1f}"
            )
        await asyncio.sleep(args.settle)  # requests the gateway gave up on may still be finishing
        for name, product, units in (("hot", hot, args.buyers), ("race", race, args.units)):
            w = waves[name]
            stock, reserved, ordered = await held(bench.stack, product["id"])
            # every unit is in stock, or held by catalog for an order that exists (or is being given back)
            w.oversold += max(0, ordered - units, reserved - units, -stock)
            w.unaccounted += units - reserved - stock
        # catalog alone, the same shapes: what its reservation can take, without the rest of the shop
        (alone,) = await products(gw, 1, stock=args.buyers)
        for name, ids in (("catalog spread", [p["id"] for p in spread]), ("catalog hot", [alone["id"]])):
            await reservations(catalog_url, token, ids, args.buyers, waves[name])
    rows: list[Row] = []
    for name, label in (
        ("spread", f"{args.buyers} buyers of {args.buyers} different products"),
        ("hot", f"{args.buyers} buyers of one variant with {args.buyers} units"),
        ("race", f"{args.buyers} buyers of one variant with {args.units} units"),
        ("catalog spread", f"catalog alone: {args.buyers} reservations of different products"),
        ("catalog hot", f"catalog alone: {args.buyers} reservations of one variant"),
    ):
        w = waves[name]
        if name.startswith("catalog"):
            rows.append(
                Row(
                    label,
                    w.said().replace("orders/s", "reservations/s"),
                    "-",
                    None,
                    {"shape": name, **w.figures()},
                )
            )
            continue
        rows.append(Row(f"checkout, {label}", w.said(), "-", None, {"shape": name, **w.figures()}))
        n = len(w.latencies) or 1
        per = {part: round(sec * 1000 / n, 2) for part, sec in sorted(cpu[name].items(), key=lambda x: -x[1])}
        rows.append(
            Row(
                f"checkout, {name}: CPU-ms per order (its events' consumers included)",
                ", ".join(f"{part} {ms:.1f}" for part, ms in per.items()) + f"; all {sum(per.values()):.1f}",
                "-",
                None,
                {"shape": name, "cpu_ms_per_order": per},
            )
        )
    ratio = waves["spread"].rate / waves["hot"].rate if waves["hot"].rate else float("inf")
    race_ratio = waves["spread"].rate / waves["race"].rate if waves["race"].rate else float("inf")
    rows.append(
        Row(
            "checkout: spread orders/s over hot (and over the race)",
            f"{ratio:.2f}x ({race_ratio:.2f}x)",
            "<= 1.5x",
            ratio <= 1.5,
            {"hot_ratio": round(ratio, 3), "race_ratio": round(race_ratio, 3)},
        )
    )
    alone = (
        waves["catalog spread"].rate / waves["catalog hot"].rate
        if waves["catalog hot"].rate
        else float("inf")
    )
    rows.append(
        Row(
            "catalog alone: spread reservations/s over hot",
            f"{alone:.2f}x",
            "-",
            None,
            {"catalog_ratio": round(alone, 3)},
        )
    )
    oversold = waves["hot"].oversold + waves["race"].oversold
    unaccounted = waves["hot"].unaccounted + waves["race"].unaccounted
    failed = sum(w.failed for w in waves.values())
    rows.append(
        Row(
            "checkout: oversold units, units neither in stock nor held, answers other than 201/409",
            f"{oversold}, {unaccounted}, {failed}",
            "0, 0, 0",
            oversold == 0 and unaccounted == 0 and failed == 0,
        )
    )
    for row in rows:
        print(f"  {row.measure}: {row.figure}", flush=True)
    return rows, oversold == 0 and unaccounted == 0 and failed == 0


async def run(args: argparse.Namespace, info: dict[str, Any]) -> tuple[list[Row], bool]:
    infra = Infra.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-checkout-"))
    env = {**EXTRA_ENV, "DB_POOL_SIZE": str(args.db_pool_size)}
    stack = Stack(infra=infra, workdir=workdir, mail=MailCatcher(), extra_env=env)
    info["config"] = f"DB pool per service: {args.db_pool_size} (+ as many overflow); logs at WARNING"
    bench = Bench(stack, args)
    rows: list[Row] = []
    ok = False
    try:
        async with asyncio.timeout(args.deadline):
            await stack.up()
            await asyncio.to_thread(
                subprocess.run,
                CREATE_ADMIN,
                cwd=ROOT,
                env=stack.env("auth"),
                check=True,
                capture_output=True,
                timeout=60,
            )
            print("stack up: " + ", ".join(f"{p} {stack.procs[p].pid}" for p in PARTS), flush=True)
            rows, ok = await measure(bench, args)
    except TimeoutError:
        print(f"deadline: the run passed {args.deadline:.0f} s and was cut short", flush=True)
        rows.append(Row("deadline", f"cut short after {args.deadline:.0f} s", "finish", False))
    except BaseException:
        for part in stack.procs:
            print(f"--- {part} log (last lines)\n{stack.tail(part, 20)}", file=sys.stderr)
        raise
    finally:
        await take_down(stack, info, ok)
    return rows, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--units", type=int, default=50, help="the race's stock (fewer than --buyers)")
    parser.add_argument("--rounds", type=int, default=2, help="each shape runs once per round")
    parser.add_argument(
        "--db-pool-size", type=int, default=CommonSettings.model_fields["db_pool_size"].default
    )
    parser.add_argument("--settle", type=float, default=12.0, help="seconds to wait before counting units")
    parser.add_argument("--deadline", type=float, default=600.0)
    parser.add_argument("--json", type=Path, help="also write the machine and the table to this file")
    args = parser.parse_args()
    run_and_report(run, args)


if __name__ == "__main__":
    main()
