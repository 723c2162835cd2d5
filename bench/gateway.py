"""The gateway's cost: the same GET directly against a service and through the gateway.

Starts, on loopback, a small FastAPI service and three gateways in front of it, one per
upstream client (``UPSTREAM_CLIENT``: the default, the gateway's own keep-alive HTTP/1.1
connections; aiohttp's and httpx's clients, kept selectable) as separate processes, then
measures a public read at concurrency 1 and 32 through each, and a signed-in read (token
verified + revocation looked up in Redis) through the default one. Needs Redis at REDIS_URL
(default 127.0.0.1:6379). Bounded: ~35 s.

    python bench/gateway.py [--seconds 2.5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
# the gateway's upstream clients, its default first
CLIENTS = ("http1", "aiohttp", "httpx")


def upstream_app():  # type: ignore[no-untyped-def]
    from fastapi import FastAPI

    app = FastAPI()
    product = {"id": str(uuid.uuid4()), "name": "Espresso cup", "price": 1250, "currency": "EUR", "stock": 7}

    @app.get("/products/{id_or_slug}")
    async def read_product(id_or_slug: str) -> dict[str, object]:
        return product

    @app.get("/cart")
    async def read_cart() -> dict[str, object]:
        return {"items": [], "item_count": 0, "subtotal": 0, "currency": "EUR"}

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ready"}

    return app


def free_port() -> int:
    from libs.common.testing.apps import free_port as fp

    return fp()


async def wait_ready(url: str, proc: subprocess.Popen[bytes], within: float = 15) -> None:
    deadline = time.monotonic() + within
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}")
            try:
                async with s.get(url + "/healthz") as r:
                    if r.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{url} did not start")


async def load(url: str, *, concurrency: int, seconds: float, headers: dict[str, str]) -> dict[str, float]:
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        for _ in range(min(concurrency, 8)):  # warm the connections and caches (JWKS)
            async with session.get(url) as r:
                await r.read()
        stop = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal errors
            while (t0 := time.perf_counter()) < stop:
                async with session.get(url) as r:
                    await r.read()
                    if r.status != 200:
                        errors += 1
                latencies.append(time.perf_counter() - t0)

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    return {"rps": len(latencies) / elapsed, "p50": q[49] * 1000, "p99": q[98] * 1000, "errors": errors}


def start_gateway(port: int, upstream: str, client: str, keys_env: dict[str, str]) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "ENV": "dev",
        "LOG_LEVEL": "WARNING",
        "UPSTREAM_CLIENT": client,
        "CATALOG_URL": upstream,
        "CART_URL": upstream,
        "REDIS_PREFIX": f"bench:{uuid.uuid4().hex[:8]}:",
        "RATE_LIMITS": json.dumps({"default": {"rate": 1_000_000, "burst": 1_000_000}}),
        **keys_env,
    }
    return subprocess.Popen([sys.executable, "-m", "gateway"], cwd=ROOT, env=env)


async def run(seconds: float) -> None:
    from libs.common.testing.keys import TestKeys

    keys = TestKeys()
    keys_env = {"JWKS_URL": keys.jwks_url, "JWT_ISSUER": keys.issuer, "JWT_AUDIENCE": keys.audience}
    up_port = free_port()
    ports = {client: free_port() for client in CLIENTS}
    upstream = f"http://127.0.0.1:{up_port}"
    procs = [subprocess.Popen([sys.executable, __file__, "--serve-upstream", str(up_port)], cwd=ROOT)]
    procs += [start_gateway(ports[client], upstream, client, keys_env) for client in CLIENTS]
    print(
        f"pids (for py-spy): upstream {procs[0].pid}, "
        + ", ".join(f"gateway {client} {proc.pid}" for client, proc in zip(CLIENTS, procs[1:], strict=True)),
        flush=True,
    )
    try:
        for port, proc in zip((up_port, *ports.values()), procs, strict=True):
            await wait_ready(f"http://127.0.0.1:{port}", proc)
        path = "/products/espresso-cup"
        bearer = {"Authorization": f"Bearer {keys.mint(expires_in=3600)}"}
        cases = [("direct", upstream + path, {})]
        cases += [(f"gateway {client}", f"http://127.0.0.1:{ports[client]}{path}", {}) for client in CLIENTS]
        cases += [
            ("direct /cart", upstream + "/cart", bearer),
            (f"gateway {CLIENTS[0]} /cart (JWT)", f"http://127.0.0.1:{ports[CLIENTS[0]]}/cart", bearer),
        ]
        results: dict[tuple[str, int], dict[str, float]] = {}
        print(f"{'case':32} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
        for concurrency in (1, 32):
            for name, url, headers in cases:
                r = results[(name, concurrency)] = await load(
                    url, concurrency=concurrency, seconds=seconds, headers=headers
                )
                print(
                    f"{name:32} {concurrency:>4} {r['rps']:>9.0f} {r['p50']:>8.2f} {r['p99']:>8.2f} "
                    f"{r['errors']:>6.0f}"
                )
        print()
        for concurrency in (1, 32):
            base = results[("direct", concurrency)]
            for name in (f"gateway {client}" for client in CLIENTS):
                r = results[(name, concurrency)]
                print(
                    f"c={concurrency:<3} {name:16} throughput {r['rps'] / base['rps']:6.1%} of direct, "
                    f"p50 +{r['p50'] - base['p50']:.2f} ms, p99 +{r['p99'] - base['p99']:.2f} ms"
                )
            base, r = (
                results[("direct /cart", concurrency)],
                results[(f"gateway {CLIENTS[0]} /cart (JWT)", concurrency)],
            )
            print(
                f"c={concurrency:<3} {'JWT route':16} throughput {r['rps'] / base['rps']:6.1%} of direct, "
                f"p50 +{r['p50'] - base['p50']:.2f} ms"
            )
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
        keys.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0, help="duration of each measurement")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        import uvicorn

        uvicorn.run(
            upstream_app(),
            host="127.0.0.1",
            port=args.serve_upstream,
            loop="uvloop",
            http="httptools",
            log_level="warning",
            access_log=False,
        )
        return
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(run(args.seconds))


if __name__ == "__main__":
    main()
