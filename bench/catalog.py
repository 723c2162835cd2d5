"""Benchmark of catalog browsing: ``python bench/catalog.py [--gateway] [--requests N] [--concurrency C]``.

Seeds 10,000 products (``--variants 3``: three variants each, 30,000 variants) into a fresh database, starts the catalog as its own process
(uvicorn + uvloop, as in production), and measures ``GET /products`` for four query
shapes at a fixed concurrency: requests/s and p50/p95/p99 latency, once with the
in-process response cache off (every request runs its query) and once as deployed
(2 s micro-cache). With ``--gateway``
the same queries also go through the gateway (rate limits off). Loopback only, bounded
to about a minute; the database is dropped at the end. Needs PostgreSQL (``PG_DSN``);
Redis (``REDIS_URL``) only for the gateway.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libs.common.db import drop_database  # noqa: E402
from services.catalog.seed import seed  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402

SHAPES = {
    "category (tree)": "/products?category=electronics",
    "price range": "/products?price_min=2000&price_max=5000&sort=price_asc",
    "text search": "/products?q=running%20shoes",
    "deep page": "/products?sort=price_asc&page=400&page_size=20",
}
# option filters and facets (issue 15), and the plain list they are compared with
VARIANT_SHAPES = {
    "plain list": "/products",
    "option filter": "/products?option.Size=M",
    "two options": "/products?option.Colour=Black&option.Colour=Navy&category=home-kitchen",
    "facets": "/products?facets=true",
    "facets+filters": "/products?category=clothing&option.Size=M&facets=true",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], limit: float = 20.0) -> bool:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                return False
            try:
                async with s.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return True
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    return False


async def measure(
    base: str, path: str, *, requests: int, concurrency: int, budget: float
) -> dict[str, float]:
    """Closed loop: ``concurrency`` workers send requests back to back until done or out of time."""
    latencies: list[float] = []
    errors = 0
    remaining = requests
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(base, connector=connector) as s:
        for _ in range(50):  # warm-up: connections, plan caches
            async with s.get(path) as r:
                await r.read()
        deadline = time.monotonic() + budget

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                t0 = time.perf_counter()
                async with s.get(path) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    q = statistics.quantiles(latencies, n=100)
    return {
        "n": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50": q[49] * 1000,
        "p95": q[94] * 1000,
        "p99": q[98] * 1000,
        "errors": errors,
    }


def report(title: str, results: dict[str, dict[str, float]], concurrency: int) -> None:
    print(f"\n{title} (concurrency {concurrency})")
    print(f"{'query':<18}{'requests':>9}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, r in results.items():
        print(
            f"{name:<18}{r['n']:>9.0f}{r['rps']:>9.0f}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}"
            f"{r['errors']:>8.0f}"
        )


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--products", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1500, help="per query shape")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--variants", type=int, default=3, help="variants per product (sizes or colours)")
    parser.add_argument(
        "--facets-only", action="store_true", help="only the option/facet shapes, at c=1 and --concurrency"
    )
    parser.add_argument("--gateway", action="store_true", help="also measure through the gateway")
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    pg_dsn = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432")
    env = {
        "ENV": "test",
        "PG_DSN": pg_dsn,
        "DB_PREFIX": f"shopbench_{run}_",
        "EVENT_BUS": "memory",
        "LOG_LEVEL": "WARNING",
        "REDIS_PREFIX": f"shopbench:{run}:",
        "CATALOG_CACHE_MAX_AGE": "30",
    }
    settings = CatalogSettings(_env_file=None, pg_dsn=pg_dsn, db_prefix=env["DB_PREFIX"])  # type: ignore[call-arg]
    procs: list[subprocess.Popen[bytes]] = []
    t0 = time.perf_counter()
    try:
        await seed(settings, products=args.products, variants_per_product=args.variants)
        print(
            f"seeded {args.products} products x {args.variants} variants in {time.perf_counter() - t0:.1f}s"
        )
        base = ""
        if args.facets_only:
            await facets_only(env, args, procs)
            return
        # uncached: every request runs the query; micro-cached: the service as deployed (2 s TTL)
        for title, ttl in (
            ("catalog direct, no response cache (every request queries)", "0"),
            ("catalog direct, micro-cache on (default 2 s TTL)", "2"),
        ):
            port = free_port()
            catalog = start(
                [sys.executable, "-m", "services.catalog"],
                {**env, "PORT": str(port), "CATALOG_RESPONSE_CACHE_TTL": ttl},
            )
            procs.append(catalog)
            base = f"http://127.0.0.1:{port}"
            if not await wait_healthy(base, catalog):
                raise SystemExit(
                    f"catalog did not start: {catalog.stderr.read().decode() if catalog.stderr else ''}"
                )
            results = {
                name: await measure(
                    base, path, requests=args.requests, concurrency=args.concurrency, budget=5.0
                )
                for name, path in SHAPES.items()
            }
            report(title, results, args.concurrency)
        if args.gateway:
            gport = free_port()
            gateway = start(
                [sys.executable, "-m", "gateway"],
                {**env, "PORT": str(gport), "CATALOG_URL": base, "RATE_LIMIT_ENABLED": "false"},
            )
            procs.append(gateway)
            gbase = f"http://127.0.0.1:{gport}"
            if await wait_healthy(gbase, gateway):
                results = {
                    name: await measure(
                        gbase, path, requests=args.requests, concurrency=args.concurrency, budget=4.0
                    )
                    for name, path in SHAPES.items()
                }
                report("through the gateway (micro-cache on)", results, args.concurrency)
            else:
                print("\ngateway did not start; skipped")
    finally:
        for p in procs:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        await drop_database(settings.db_url)
    print(f"\ntotal {time.perf_counter() - t0:.1f}s")


async def facets_only(
    env: dict[str, str], args: argparse.Namespace, procs: list[subprocess.Popen[bytes]]
) -> None:
    """Option filters and facets, uncached, at c=1 (latency) and at ``--concurrency`` (ratio to the plain list)."""
    port = free_port()
    catalog = start(
        [sys.executable, "-m", "services.catalog"],
        {**env, "PORT": str(port), "CATALOG_RESPONSE_CACHE_TTL": "0"},
    )
    procs.append(catalog)
    base = f"http://127.0.0.1:{port}"
    if not await wait_healthy(base, catalog):
        raise SystemExit(f"catalog did not start: {catalog.stderr.read().decode() if catalog.stderr else ''}")
    for concurrency in (1, args.concurrency):
        results = {
            name: await measure(base, path, requests=args.requests, concurrency=concurrency, budget=5.0)
            for name, path in VARIANT_SHAPES.items()
        }
        report("options and facets, no response cache", results, concurrency)
        if concurrency == 1:  # issue 15's goal: p95 under 25 ms, one request at a time
            print(
                "p95 < 25 ms at c=1: "
                + ", ".join(f"{name} {'yes' if r['p95'] < 25 else 'NO'}" for name, r in results.items())
            )
        plain = results["plain list"]["rps"]
        print(
            "throughput ratio to the plain list: "
            + ", ".join(
                f"{name} {r['rps'] / plain:.2f}" for name, r in results.items() if name != "plain list"
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
