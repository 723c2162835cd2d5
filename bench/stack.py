"""``make bench``: the whole shop as separate processes, measured end to end, printed as one table.

The other scripts in bench/ isolate one part against stand-ins, which says where time goes
but not what a client gets. This one starts every part as ``make up`` does
(tests/e2e/stack.py: one process each, on this run's PostgreSQL databases, Redis prefix and
RabbitMQ exchange) and measures through the gateway what the shop promises: the gateway's
cost, browsing 10,000 products, no oversell under a checkout race, order events reaching
admins, a price change reaching 1,000 sockets, the CPU each part spends per request on
the hot paths (bench/cost.py), and each part's memory. Where a figure is a
comparison (gateway vs direct), both sides are measured in the same run, interleaved, so a
busy machine slows both. Loopback only; bounded by ``--deadline``; everything it started is
stopped and this run's databases, keys and queues are removed, whatever happens.

    python bench/stack.py [--json PATH] [--quick]

Exits 1 when a correctness figure fails (oversold units, unexpected errors) or the deadline
cut the run short; a slow figure is reported as not met, not as a failure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import httpx
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import cost  # noqa: E402
from bench.fanout import PriceWorkers, price_key  # noqa: E402
from bench.measuring import (  # noqa: E402
    Row,
    RssSampler,
    Sample,
    closed_loop,
    pct,
    pool,
    run_and_report,
    session,
    warm,
)
from libs.common.config import CommonSettings  # noqa: E402
from libs.common.testing.infra import Infra, settings_for  # noqa: E402
from services.catalog import seed as catalog_seed  # noqa: E402
from services.catalog.models import VISIBLE  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402
from tests.e2e.shopper import ADDRESS, ADMIN_EMAIL, ADMIN_PASSWORD, admin, make_product  # noqa: E402
from tests.e2e.stack import PARTS, MailCatcher, Stack  # noqa: E402

# every shopper of the run comes from one loopback address: limits no crowd behind a NAT reaches
# (the relay's per-address socket message budget too: 1,000 sockets from one address would be
# closed as one flooding client)
UNLIMITED = {"rate": 1_000_000, "burst": 1_000_000}
EXTRA_ENV = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMITS": json.dumps(
        {"default": UNLIMITED, "auth": UNLIMITED, "socket": UNLIMITED, "socket_message_address": UNLIMITED}
    ),
    # the event-latency measure places all its unpaid orders as one customer
    "ORDER_MAX_OPEN_UNPAID": "1000000",
}


# half of what each part spent per request when issue 22 was filed (the gateway's: Envoy's 0.35 as a
# sidecar), as (path, part) -> CPU-ms
COST_GOALS = {
    ("guest GET /products (cached list)", "gateway"): 0.35,
    ("guest GET /products (cached list)", "catalog"): 0.23,
    ("guest GET /products, varying price ranges (uncached)", "gateway"): 0.35,
    ("guest GET /products, varying price ranges (uncached)", "catalog"): 0.45,
    ("signed-in GET /cart (3 lines)", "gateway"): 0.47,
    ("signed-in GET /cart (3 lines)", "cart"): 1.0,
}

# --- the measures ------------------------------------------------------------------------------


@dataclass
class Bench:
    stack: Stack
    args: argparse.Namespace
    rows: list[Row] = field(default_factory=list)
    admin_token: str = ""
    tokens: list[str] = field(default_factory=list)
    product_id: str = ""

    @property
    def gw(self) -> str:
        return self.stack.gateway

    def row(self, *args: Any, **kw: Any) -> Row:
        row = Row(*args, **kw)
        self.rows.append(row)
        print(f"  {row.measure}: {row.figure}", flush=True)
        return row

    async def seed_catalog(self) -> None:
        """10,000 products by COPY into catalog's own database (no events: nobody else needs them)."""
        t0 = time.perf_counter()
        settings = settings_for(CatalogSettings, self.stack.infra)
        await catalog_seed.seed(settings, products=self.args.products, force=True)
        conn = await asyncpg.connect(settings.db_url.replace("+asyncpg", ""), timeout=10)
        try:
            visible = await conn.fetchval(f"SELECT count(*) FROM products WHERE {VISIBLE}")  # noqa: S608 (a constant)
        finally:
            await conn.close()
        # the catalog reads its own database; wait out any response it cached from before
        async with httpx.AsyncClient(base_url=self.gw, timeout=10) as http:
            deadline = time.monotonic() + 10
            while (total := (await http.get("/products?page_size=1")).json()["total"]) != visible:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the catalog shows {total} products, its database has {visible}")
                await asyncio.sleep(0.5)
            first = (await http.get("/products?page_size=1&sort=name")).json()["items"][0]
        self.product_id = first["id"]
        print(
            f"  seeded {self.args.products} products in {time.perf_counter() - t0:.1f} s; catalog sees {total}",
            flush=True,
        )

    async def gateway_overhead(self) -> None:
        """The same public read direct to catalog and through the gateway, interleaved in slices."""
        direct, gateway = self.stack.url("catalog"), self.gw
        per_slice = self.args.seconds / 2
        for name, path in (("list", "/products?page_size=20"), ("product", f"/products/{self.product_id}")):
            for concurrency in (1, 32):
                samples = {"direct": Sample(), "gateway": Sample()}
                async with session(concurrency) as d, session(concurrency) as g:
                    clients = {"direct": (d, direct + path), "gateway": (g, gateway + path)}
                    for s, url in clients.values():
                        await warm(s, url, concurrency)
                    for _ in range(2):
                        for target, (s, url) in clients.items():
                            samples[target].add(
                                await closed_loop(
                                    s,
                                    itertools.repeat(url).__next__,
                                    concurrency=concurrency,
                                    seconds=per_slice,
                                )
                            )
                base, via = samples["direct"], samples["gateway"]
                added = pct(via.latencies, 0.5) - pct(base.latencies, 0.5)
                share = via.rps / base.rps if base.rps else 0.0
                values = {
                    "path": path,
                    "concurrency": concurrency,
                    "direct": base.figures(),
                    "gateway": via.figures(),
                    "p50_added_ms": round(added, 2),
                    "throughput_ratio": round(share, 3),
                }
                said = "".join(f"; {side}{s.said()}" for side, s in samples.items() if s.errors)
                figure = (
                    f"p50 +{added:.2f} ms ({pct(base.latencies, 0.5):.2f} -> {pct(via.latencies, 0.5):.2f}), "
                    f"p99 {pct(base.latencies, 0.99):.2f} -> {pct(via.latencies, 0.99):.2f}; "
                    f"{via.rps:.0f} vs {base.rps:.0f} req/s = {share:.0%} of direct" + said
                )
                # one request at a time shows what the hop adds; 32 at once, what it takes from capacity
                # (at c=1 throughput is 1/latency, so a +1 ms hop on a sub-ms read cannot keep 70%)
                if concurrency == 1:
                    goal, met = "p50 <= +1 ms", added <= 1.0
                else:
                    goal, met = ">= 70% of direct req/s", share >= 0.7
                self.row(
                    f"gateway cost, GET {name}, c={concurrency}",
                    figure,
                    goal,
                    met and not base.errors and not via.errors,
                    values,
                )

    async def browsing(self) -> None:
        """Filters, search and deep pages over the seeded catalog: distinct URLs, so no cache hits."""
        rng = random.Random(7)
        categories = [
            "clothing",
            "shoes",
            "electronics",
            "home-kitchen",
            "sports-outdoors",
            "books",
            "audio",
            "laptops",
            "boots",
            "fitness",
        ]
        words = [
            *catalog_seed.BRANDS,
            *catalog_seed.COLOURS,
            *catalog_seed.MATERIALS,
            *{w for nouns, _ in catalog_seed.NOUNS.values() for n in nouns for w in n.lower().split()},
        ]
        n = self.args.requests
        shapes = {
            "category + price range": [
                f"/products?category={c}&price_min={lo}&price_max={lo + width}"
                for c, lo, width in itertools.product(
                    categories, range(1000, 40000, 250), (2500, 5000, 10000)
                )
            ],
            "text search (q=)": [f"/products?q={a}+{b}" for a, b in itertools.permutations(words, 2)],
            "deep page (page 300-499)": [
                f"/products?sort={s}&page={p}&page_size={size}"
                for s, p, size in itertools.product(
                    ("price_asc", "price_desc", "newest", "name"), range(300, 500), (20, 21)
                )
            ],
        }
        concurrency = self.args.browse_concurrency
        alone = max(50, n // 5)
        async with session(concurrency, base_url=self.gw) as s:
            await warm(s, "/products?page_size=20", concurrency)
            for name, urls in shapes.items():
                rng.shuffle(urls)
                # one shopper at a time (the latency a person sees), then c at once (the machine's capacity);
                # distinct URLs in each, so the catalog's micro-cache never answers
                for c, chosen in ((1, urls[n : n + alone]), (concurrency, urls[:n])):
                    sample = await closed_loop(s, pool(chosen), concurrency=c, seconds=self.args.seconds * 2)
                    p95 = pct(sample.latencies, 0.95)
                    self.row(
                        f"browse {self.args.products} products via gateway: {name}, c={c}",
                        f"{sample.rps:.0f} req/s, p95 {p95:.1f} ms (p50 {pct(sample.latencies, 0.5):.1f}, "
                        f"{len(sample.latencies)} requests)" + sample.said(),
                        "p95 < 25 ms",
                        p95 < 25 and not sample.errors,
                        {"shape": name, "concurrency": c, **sample.figures()},
                    )

    async def register(self, count: int) -> list[str]:
        """``count`` customers through the gateway; argon2 makes this the slow part of the setup."""
        sem = asyncio.Semaphore(8)
        async with session(8, base_url=self.gw) as s:

            async def one(i: int) -> str:
                async with (
                    sem,
                    s.post(
                        "/auth/register",
                        json={
                            "email": f"bench-{i}-{uuid.uuid4().hex[:8]}@bench.shop.test",
                            "password": "Customer-pass-1",
                            "name": f"Buyer {i}",
                        },
                    ) as resp,
                ):
                    body = await resp.json()
                    if resp.status != 201:
                        raise RuntimeError(f"register answered {resp.status}: {body}")
                    return str(body["access_token"])

            t0 = time.perf_counter()
            tokens = await asyncio.gather(*(one(i) for i in range(count)))
        print(f"  registered {count} customers in {time.perf_counter() - t0:.1f} s", flush=True)
        return list(tokens)

    async def new_product(self, *, stock: int, price: int = 2500) -> dict[str, Any]:
        async with httpx.AsyncClient(base_url=self.gw, timeout=20) as http:
            boss = await admin(http)
            self.admin_token = boss.token
            return await make_product(http, boss, stock=stock, price=price)

    async def checkout_race(self) -> bool:
        """Every customer orders one unit of a product that has fewer, all at once."""
        tokens = self.tokens = await self.register(self.args.buyers)
        units = self.args.units
        product = await self.new_product(stock=units)
        statuses: list[int | str] = []
        problems: list[str] = []  # what the unexpected answers said, for the report
        body = {"shipping_address": ADDRESS, "items": [{"product_id": product["id"], "quantity": 1}]}
        async with session(len(tokens), base_url=self.gw) as s:
            go = asyncio.Event()

            async def buy(token: str) -> float:
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                await go.wait()
                t0 = time.perf_counter()
                try:
                    async with s.post("/orders", json=body, headers=headers) as resp:
                        answer = await resp.read()
                        statuses.append(resp.status)
                        if resp.status not in (201, 409):
                            problems.append(answer.decode(errors="replace")[:300])
                except aiohttp.ClientError as exc:
                    statuses.append(type(exc).__name__)
                return time.perf_counter() - t0

            tasks = [asyncio.create_task(buy(t)) for t in tokens]
            await asyncio.sleep(0.2)
            start = time.perf_counter()
            go.set()
            latencies = await asyncio.gather(*tasks)
            elapsed = time.perf_counter() - start
            async with s.get(f"/products/{product['id']}") as resp:
                stock = (await resp.json())["stock"]
        sold = statuses.count(201)
        refused = statuses.count(409)
        failed = len(statuses) - sold - refused
        oversold = max(0, sold - units, -stock)
        lost = units - sold - stock  # units gone that no order holds
        values = {
            "buyers": len(tokens),
            "units": units,
            "created": sold,
            "conflicts": refused,
            "failed": failed,
            "final_stock": stock,
            "seconds": round(elapsed, 3),
            "orders_per_s": round(len(tokens) / elapsed, 1),
            "p50_ms": round(pct(latencies, 0.5), 1),
            "p99_ms": round(pct(latencies, 0.99), 1),
            "other_statuses": sorted({str(x) for x in statuses} - {"201", "409"}),
            "first_problems": sorted(set(problems))[:3],
        }
        self.row(
            f"checkout race: {len(tokens)} buyers, {units} units, POST /orders",
            f"{len(tokens) / elapsed:.0f} orders/s answered ({sold} x 201, {refused} x 409 in {elapsed:.2f} s; "
            f"p50 {pct(latencies, 0.5):.0f} ms, p99 {pct(latencies, 0.99):.0f} ms)",
            "-",
            None,
            values,
        )
        self.row(
            "checkout race: oversold units",
            f"{oversold} (final stock {stock}, {sold} orders"
            + (f", {lost} units unaccounted" if lost else "")
            + ")",
            "0",
            oversold == 0 and lost == 0,
            values,
        )
        self.row(
            "checkout race: failures other than 409",
            f"{failed}" + (f" ({', '.join(values['other_statuses'])})" if failed else ""),
            "0",
            failed == 0,
            values,
        )
        return oversold == 0 and lost == 0 and failed == 0

    async def event_latency(self) -> bool:
        """POST /orders sent -> the admin's socket (through the gateway) has that order's order:created."""
        product = await self.new_product(stock=1_000_000)
        arrived: dict[str, float] = {}
        signals: dict[str, asyncio.Event] = {}
        sio = socketio.AsyncClient(reconnection=False)

        @sio.on("order:created")
        async def got(payload: dict[str, Any]) -> None:
            order_id = str(payload.get("data", {}).get("order_id"))
            arrived.setdefault(order_id, time.perf_counter())
            signals.setdefault(order_id, asyncio.Event()).set()

        await sio.connect(
            self.gw, auth={"token": self.admin_token}, transports=["websocket"], wait_timeout=20
        )
        latencies: list[float] = []
        answered: list[float] = []  # POST /orders alone: the rest of the latency is the event's way
        failed = missed = 0
        body = {"shipping_address": ADDRESS, "items": [{"product_id": product["id"], "quantity": 1}]}
        try:
            customer = {"Authorization": f"Bearer {self.tokens[0]}"}
            async with session(1, base_url=self.gw, headers=customer) as s:
                for _ in range(self.args.orders):
                    t0 = time.perf_counter()
                    async with s.post(
                        "/orders", json=body, headers={"Idempotency-Key": uuid.uuid4().hex}
                    ) as resp:
                        answer = await resp.json()
                    answered.append(time.perf_counter() - t0)
                    if resp.status != 201:
                        failed += 1
                        continue
                    order_id = answer["id"]
                    try:
                        await asyncio.wait_for(signals.setdefault(order_id, asyncio.Event()).wait(), 5)
                        latencies.append(arrived[order_id] - t0)
                    except TimeoutError:
                        missed += 1
        finally:
            await sio.disconnect()
        p99 = pct(latencies, 0.99)
        self.row(
            f"POST /orders -> admin socket order:created ({len(latencies)} orders, one at a time)",
            f"p50 {pct(latencies, 0.5):.1f} ms, p99 {p99:.1f} ms, max {max(latencies, default=0) * 1000:.1f} ms "
            f"(the POST alone: p50 {pct(answered, 0.5):.1f} ms)"
            + (f"; {missed} never arrived, {failed} orders failed" if missed or failed else ""),
            "p99 < 100 ms",
            p99 < 100 and not missed and not failed,
            {
                "orders": self.args.orders,
                "p50_ms": round(pct(latencies, 0.5), 2),
                "p99_ms": round(p99, 2),
                "max_ms": round(max(latencies, default=0) * 1000, 2),
                "post_p50_ms": round(pct(answered, 0.5), 2),
                "missed": missed,
                "failed": failed,
            },
        )
        return not missed and not failed

    async def fan_out(self) -> bool:
        """An admin changes a price over REST; every guest socket through the gateway is told."""
        n, rounds = self.args.sockets, self.args.rounds
        product = await self.new_product(stock=10, price=10_000)
        sent: dict[str, float] = {}
        t0 = time.perf_counter()
        async with PriceWorkers(self.gw, n, product["id"]) as workers:
            print(
                f"  {n} sockets connected through the gateway in {time.perf_counter() - t0:.1f} s", flush=True
            )
            await asyncio.sleep(1)
            async with httpx.AsyncClient(
                base_url=self.gw, timeout=20, headers={"Authorization": f"Bearer {self.admin_token}"}
            ) as http:
                for i in range(1, rounds + 1):
                    key = price_key(product["id"], 10_000 + i)
                    sent[key] = time.perf_counter()
                    resp = await http.patch(f"/admin/products/{product['id']}", json={"price": 10_000 + i})
                    resp.raise_for_status()
                    await workers.wait_round(key)
                    await asyncio.sleep(0.3)
            arrivals = await workers.arrivals()
        every: list[float] = []
        lasts: list[float] = []
        missed = 0
        for key, start in sent.items():
            got = arrivals.get(key, [])
            every += [t - start for t in got]
            missed += n - len(got)
            if len(got) == n:
                lasts.append(max(got) - start)
        values = {
            "sockets": n,
            "rounds": rounds,
            "p50_ms": round(pct(every, 0.5), 1),
            "p99_ms": round(pct(every, 0.99), 1),
            "max_ms": round(max(every, default=0) * 1000, 1),
            "last_p50_ms": round(pct(lasts, 0.5), 1),
            "last_max_ms": round(max(lasts, default=0) * 1000, 1),
            "missed": missed,
        }
        self.row(
            f"price change -> {n} sockets via gateway: each delivery ({rounds} rounds)",
            f"p50 {values['p50_ms']} ms, p99 {values['p99_ms']} ms, max {values['max_ms']} ms",
            "p99 < 250 ms",
            values["p99_ms"] < 250 and missed == 0,
            values,
        )
        self.row(
            f"price change -> {n} sockets via gateway: the last one",
            f"p50 {values['last_p50_ms']} ms, max {values['last_max_ms']} ms over {len(lasts)} complete rounds"
            + (f"; {missed} deliveries missing" if missed else ""),
            "every socket told",
            missed == 0,
            values,
        )
        return missed == 0

    async def cpu_cost(self) -> None:
        """CPU-ms per request of each part on each path (bench/cost.py), against a baseline if given."""
        async with httpx.AsyncClient(base_url=self.gw, timeout=20) as http:
            listed = (await http.get("/products?page_size=3&sort=name")).json()["items"]
        token = self.tokens[0] if self.tokens else (await self.register(1))[0]
        await cost.customer_with_cart(self.gw, token, [p["id"] for p in listed])
        head = cost.Side("head", self.gw, {p: self.stack.procs[p].pid for p in PARTS})
        sides = [head]
        baseline = tree = granian = None
        try:
            if self.args.baseline:
                tree = cost.baseline_tree(self.args.baseline)
                baseline = await cost.start_baseline(self.stack, tree, self.stack.workdir / "baseline")
                ids = {p: baseline.procs[p].pid for p in cost.COMPARED}
                sides.append(cost.Side("baseline", baseline.gateway, {**head.pids, **ids}))
            if self.args.granian:
                granian = await cost.start_granian_gateway(self.stack, self.stack.workdir / "granian")
                sides.append(cost.Side("granian", granian.gateway, {**head.pids, "gateway": granian.pid}))  # type: ignore[attr-defined]
            await cost.idle_rates(sides)
            paths = cost.chosen(cost.paths([p["id"] for p in listed]), self.args.cost_paths)
            await cost.drive(
                sides,
                paths,
                token=token,
                seconds=self.args.cost_seconds,
                rounds=self.args.cost_rounds,
                profile=self.args.profile,
            )
        finally:
            if baseline is not None:
                cost.stop_baseline(baseline)
            if tree is not None:
                shutil.rmtree(tree, ignore_errors=True)
            if granian is not None:
                granian.terminate()
                granian.wait(10)
        for row in cost.rows(sides, paths, COST_GOALS):
            self.rows.append(row)
            print(f"  {row.measure}: {row.figure}", flush=True)
        if self.args.profile:
            print(cost.summarise_profile(self.args.profile), flush=True)

    def memory(self, idle: dict[str, int], sampler: RssSampler) -> None:
        for part in PARTS:
            before, peak = idle.get(part, 0) / 1024, sampler.peak.get(part, 0) / 1024
            self.row(
                f"memory (VmRSS) {part}",
                f"idle {before:.0f} MiB, peak {peak:.0f} MiB",
                "-",
                None,
                {"part": part, "idle_mib": round(before, 1), "peak_mib": round(peak, 1)},
            )


async def take_down(stack: Stack, info: dict[str, Any], ok: bool) -> None:
    """How every whole-shop run ends, however it ended (bench/checkout.py, bench/fanout_paths.py too):
    the shared PostgreSQL, Redis and RabbitMQ are left as the run found them, and the parts' logs are
    kept only when a failure gives a reason to read them."""
    stack.down()
    await stack.infra.cleanup()
    info["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if ok:
        shutil.rmtree(stack.workdir, ignore_errors=True)
    else:
        print(f"the parts' logs are kept in {stack.workdir}", file=sys.stderr)


async def run(args: argparse.Namespace, info: dict[str, Any]) -> tuple[list[Row], bool]:
    infra = Infra.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-"))
    # the deployed pool size, not the e2e stack's (sized for test runs sharing one PostgreSQL)
    env = {**EXTRA_ENV, "DB_POOL_SIZE": str(args.db_pool_size)}
    if args.catalog_cache_ttl is not None:
        env["CATALOG_RESPONSE_CACHE_TTL"] = str(args.catalog_cache_ttl)
    stack = Stack(infra=infra, workdir=workdir, mail=MailCatcher(), extra_env=env)
    ttl = float(
        stack.env("catalog").get(
            "CATALOG_RESPONSE_CACHE_TTL", CatalogSettings.model_fields["catalog_response_cache_ttl"].default
        )
    )
    info["config"] = (
        f"catalog response micro-cache: {f'on, {ttl:g} s TTL' if ttl > 0 else 'off'}; "
        f"DB pool per service: {stack.env('catalog').get('DB_POOL_SIZE', 'default')} "
        f"(+ as many overflow); logs at WARNING; rate limits out of the way"
    )
    bench = Bench(stack, args)
    ok = True
    sampler_task: asyncio.Task[None] | None = None
    try:
        async with asyncio.timeout(args.deadline):
            t0 = time.perf_counter()
            await stack.up()
            await asyncio.to_thread(
                subprocess.run,
                [
                    sys.executable,
                    "-m",
                    "services.auth",
                    "create-admin",
                    "--email",
                    ADMIN_EMAIL,
                    "--password",
                    ADMIN_PASSWORD,
                ],
                cwd=ROOT,
                env=stack.env("auth"),
                check=True,
                capture_output=True,
                timeout=60,
            )
            print(
                f"stack up in {time.perf_counter() - t0:.1f} s: "
                + ", ".join(f"{p} {stack.procs[p].pid}" for p in PARTS),
                flush=True,
            )
            sampler = RssSampler({p: stack.procs[p].pid for p in PARTS})
            await asyncio.sleep(2)
            idle = sampler.read()
            sampler_task = asyncio.create_task(sampler.run())
            steps: list[tuple[str, str, Callable[[], Awaitable[bool | None]]]] = [
                ("seed", "seeding the catalog", bench.seed_catalog),
                ("gateway", "1. gateway overhead", bench.gateway_overhead),
                ("browse", f"2. browsing {args.products} products", bench.browsing),
                ("checkout", "3. checkout under contention", bench.checkout_race),
                ("events", "4. event pipeline latency", bench.event_latency),
                ("fanout", "5. realtime fan-out", bench.fan_out),
                ("cost", "6. CPU per request", bench.cpu_cost),
            ]
            only = set(args.only.split(",")) if args.only else {name for name, _, _ in steps}
            if only & {"gateway", "browse", "cost"}:
                only.add("seed")
            if "events" in only:
                only.add("checkout")  # its customers place the orders
            for _, title, step in (s for s in steps if s[0] in only):
                print(title, flush=True)
                t0 = time.perf_counter()
                ok &= await step() is not False
                print(f"  ({time.perf_counter() - t0:.1f} s)", flush=True)
            bench.memory(idle, sampler)
    except TimeoutError:
        print(f"deadline: the run passed {args.deadline:.0f} s and was cut short", flush=True)
        bench.rows.append(Row("deadline", f"cut short after {args.deadline:.0f} s", "finish", False))
        ok = False
    except BaseException:
        ok = False
        for part in stack.procs:
            print(f"--- {part} log (last lines)\n{stack.tail(part, 20)}", file=sys.stderr)
        raise
    finally:
        if sampler_task is not None:
            sampler_task.cancel()
        await take_down(stack, info, ok)
    return bench.rows, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="also write the machine and the table to this file")
    parser.add_argument("--quick", action="store_true", help="small counts, for trying the script out")
    parser.add_argument("--seconds", type=float, default=3.0, help="per gateway-overhead case (both sides)")
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000, help="per browsing shape")
    parser.add_argument("--browse-concurrency", type=int, default=16)
    parser.add_argument("--buyers", type=int, default=200)
    parser.add_argument("--units", type=int, default=50)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--db-pool-size",
        type=int,
        default=CommonSettings.model_fields["db_pool_size"].default,
        help="DB_POOL_SIZE of every service (default: the settings' default)",
    )
    parser.add_argument(
        "--catalog-cache-ttl", type=float, help="override CATALOG_RESPONSE_CACHE_TTL (0: off)"
    )
    parser.add_argument("--deadline", type=float, default=480.0, help="seconds before the run is cut short")
    parser.add_argument("--only", help="comma-separated: seed,gateway,browse,checkout,events,fanout,cost")
    parser.add_argument("--cost-seconds", type=float, default=3.0, help="per CPU-per-request slice")
    parser.add_argument("--cost-rounds", type=int, default=4, help="slices per path (and side)")
    parser.add_argument(
        "--cost-paths",
        help="comma-separated words: only the CPU-per-request paths whose name holds one (e.g. 'cart')",
    )
    parser.add_argument(
        "--baseline",
        help="a commit whose gateway, catalog and cart run beside this checkout's for the CPU figures "
        "(on the same databases: it must know every migration this checkout applied)",
    )
    parser.add_argument(
        "--granian",
        action="store_true",
        help="also measure this checkout's gateway served by granian (installed by hand: measured, not a dependency)",
    )
    parser.add_argument(
        "--profile", type=Path, help="record each part with py-spy during the CPU measure, into this folder"
    )
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.products, args.requests, args.buyers = 1.0, 2000, 200, 40
        args.units, args.orders, args.sockets, args.rounds = 10, 20, 100, 2
    run_and_report(run, args)


if __name__ == "__main__":
    main()
