"""What tracing costs a request: ``python bench/tracing.py [--seconds 3] [--rounds 2] [--batches 20]``.

Seeds 1,000 products into a fresh database and starts, as separate processes (uvicorn +
uvloop, as deployed), three catalogs and a gateway in front of each: one pair with tracing
off (the default), one with ``TRACES=otlp`` recording every trace, one recording 10% of them
(``TRACES_SAMPLE_RATIO=0.1``). Spans go to a stand-in collector on loopback that this script
runs (it answers each OTLP/HTTP export with 200 and counts the bytes, so the cost measured
includes building, batching and encoding the spans, not a real collector's).

It reads one product, response cache off so each request runs its query (a server span, a
query span, a gateway client span each), directly and through the gateway:

- under load, at concurrency 1 and 16, the three in turn for ``--rounds`` rounds: medians
  of req/s, p50 and p99, and each serving process's CPU time per request (``/proc``, every
  thread, the exporter's included; for the gateway rows the gateway's own);
- in one process per case, one request at a time: the CPU per request of the fastest and
  the median of ``--batches`` batches of 100 (contention only ever adds to a batch), and of
  every thread. On a shared machine these are the figures to read; the six processes and
  the load generator share two cores.

Loopback only, bounded (about three minutes; ``--rounds 0`` keeps only the in-process part,
about one and a half); the database is dropped at the end. Needs PostgreSQL (``PG_DSN``)
and Redis (``REDIS_URL``, for the gateway).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measuring import closed_loop, pct, session, warm  # noqa: E402
from libs.common.db import drop_database  # noqa: E402
from libs.common.testing.apps import free_port  # noqa: E402
from services.catalog.seed import seed  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402


class Collector:
    """A stand-in OTLP/HTTP receiver: takes every export, keeps only the count of bytes."""

    def __init__(self) -> None:
        self.exports = 0
        self.bytes = 0

    async def receive(self, request: web.Request) -> web.Response:
        self.bytes += len(await request.read())
        self.exports += 1
        return web.Response(body=b"", content_type="application/x-protobuf")


def cpu_seconds(pid: int) -> float:
    """User + system CPU a process has used (all its threads: the span exporter's too)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        cmd, cwd=ROOT, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


async def wait_healthy(url: str, proc: subprocess.Popen[bytes], limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"{url} exited: {proc.stderr.read().decode() if proc.stderr else ''}")
            try:
                async with s.get(f"{url}/healthz") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise SystemExit(f"{url} did not start")


async def one_product(base: str) -> str:
    async with aiohttp.ClientSession() as s, s.get(f"{base}/products?page_size=1") as r:
        body: dict[str, Any] = await r.json()
    return f"/products/{body['items'][0]['id']}"


async def in_process(target: str, path: str, batches: int, size: int) -> None:
    """``--child``: serve ``path`` through ``target`` built in this process (tracing as the
    environment says) and print its CPU per request as JSON: the main thread's, the fastest
    and the median batch (contention only ever adds), and every thread's (the exporter too)."""
    import httpx

    if target == "catalog":
        from services.catalog.app import create_app as catalog_app

        app = catalog_app(CatalogSettings())
    else:
        from gateway.app import create_app as gateway_app
        from gateway.settings import GatewaySettings

        app = gateway_app(GatewaySettings())
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(size):  # warm: connections, plan caches
                assert (await client.get(path)).status_code == 200
            per_batch: list[float] = []
            process0 = time.process_time()
            for _ in range(batches):
                t0 = time.thread_time()
                for _ in range(size):
                    assert (await client.get(path)).status_code == 200
                per_batch.append((time.thread_time() - t0) / size * 1e6)
            await asyncio.sleep(0.7)  # the exporter's last batch
            everything = (time.process_time() - process0) / (batches * size) * 1e6
    print(
        json.dumps({"min": min(per_batch), "median": statistics.median(per_batch), "all_threads": everything})
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=3.0, help="each measurement")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="off/on alternations (medians are printed); 0: only the in-process figures",
    )
    parser.add_argument("--products", type=int, default=1000)
    parser.add_argument("--batches", type=int, default=20, help="in-process: batches of 100 requests")
    parser.add_argument("--child", nargs=2, metavar=("TARGET", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        await in_process(args.child[0], args.child[1], args.batches, 100)
        return

    run = uuid.uuid4().hex[:8]
    pg_dsn = os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432")
    collector = Collector()
    sink = web.Application()
    sink.router.add_post("/v1/traces", collector.receive)
    runner = web.AppRunner(sink, access_log=None)
    await runner.setup()
    sink_port = free_port()
    await web.TCPSite(runner, "127.0.0.1", sink_port).start()

    env = {
        "ENV": "test",
        "PG_DSN": pg_dsn,
        "DB_PREFIX": f"shopbench_{run}_",
        "EVENT_BUS": "memory",
        "LOG_LEVEL": "WARNING",
        "REDIS_PREFIX": f"shopbench:{run}:",
        "CATALOG_RESPONSE_CACHE_TTL": "0",
        "RATE_LIMIT_ENABLED": "false",
    }
    # exports every 0.5 s (not 5): the encoding's CPU falls inside the measurement it belongs to
    otlp = {
        "TRACES": "otlp",
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{sink_port}",
        "OTEL_BSP_SCHEDULE_DELAY": "500",
    }
    modes = {
        "off": {"TRACES": "off"},
        "on": otlp,
        "on 10%": {**otlp, "TRACES_SAMPLE_RATIO": "0.1"},
    }
    settings = CatalogSettings(_env_file=None, pg_dsn=pg_dsn, db_prefix=env["DB_PREFIX"])
    procs: list[subprocess.Popen[bytes]] = []
    t0 = time.perf_counter()
    try:
        await seed(settings, products=args.products)
        urls: dict[tuple[str, str], str] = {}
        pids: dict[tuple[str, str], int] = {}
        for mode, extra in modes.items():
            cport, gport = free_port(), free_port()
            catalog = start([sys.executable, "-m", "services.catalog"], {**env, **extra, "PORT": str(cport)})
            procs.append(catalog)
            pids[(mode, "catalog")] = catalog.pid
            urls[(mode, "catalog")] = f"http://127.0.0.1:{cport}"
            await wait_healthy(urls[(mode, "catalog")], catalog)
            gateway = start(
                [sys.executable, "-m", "gateway"],
                {**env, **extra, "PORT": str(gport), "CATALOG_URL": urls[(mode, "catalog")]},
            )
            procs.append(gateway)
            pids[(mode, "gateway")] = gateway.pid
            urls[(mode, "gateway")] = f"http://127.0.0.1:{gport}"
            await wait_healthy(urls[(mode, "gateway")], gateway)
        path = await one_product(urls[("off", "catalog")])
        print(
            f"seeded {args.products} products, 6 processes up in {time.perf_counter() - t0:.1f}s; GET {path}"
        )

        figures: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        for concurrency in (1, 16):
            for _round in range(args.rounds):
                for target in ("catalog", "gateway"):
                    for mode in modes:
                        url = urls[(mode, target)] + path
                        async with session(concurrency) as s:
                            await warm(s, url, concurrency)
                            cpu = cpu_seconds(pids[(mode, target)])
                            sample = await closed_loop(
                                s, functools.partial(str, url), concurrency=concurrency, seconds=args.seconds
                            )
                            await asyncio.sleep(0.6)  # the last export of this measurement
                            cpu = cpu_seconds(pids[(mode, target)]) - cpu
                        if sample.errors:
                            raise SystemExit(f"{mode} {target}: {sample.said()}")
                        figures.setdefault((target, mode, concurrency), []).append(
                            {
                                "rps": sample.rps,
                                "p50": pct(sample.latencies, 0.5),
                                "p99": pct(sample.latencies, 0.99),
                                "cpu": cpu / len(sample.latencies) * 1e6,
                            }
                        )
        if args.rounds:
            await asyncio.sleep(6)  # the batch processor exports every 5 s: let the last batch arrive

            def med(target: str, mode: str, c: int, key: str) -> float:
                return statistics.median(f[key] for f in figures[(target, mode, c)])

            print(
                f"\n{'path':<10}{'conc':>5}{'tracing':>9}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'CPU us/req':>12}"
            )
            for concurrency in (1, 16):
                for target in ("catalog", "gateway"):
                    for mode in modes:
                        print(
                            f"{target:<10}{concurrency:>5}{mode:>9}{med(target, mode, concurrency, 'rps'):>9.0f}"
                            f"{med(target, mode, concurrency, 'p50'):>9.2f}{med(target, mode, concurrency, 'p99'):>9.2f}"
                            f"{med(target, mode, concurrency, 'cpu'):>12.0f}"
                        )
            print()
            for concurrency in (1, 16):
                for target in ("catalog", "gateway"):
                    off_rps, off_p50 = (
                        med(target, "off", concurrency, "rps"),
                        med(target, "off", concurrency, "p50"),
                    )
                    off_cpu = med(target, "off", concurrency, "cpu")
                    for mode in ("on", "on 10%"):
                        on_rps, on_p50 = (
                            med(target, mode, concurrency, "rps"),
                            med(target, mode, concurrency, "p50"),
                        )
                        on_cpu = med(target, mode, concurrency, "cpu")
                        print(
                            f"c={concurrency:<3} {target:8} {mode:7}: CPU per request {on_cpu / off_cpu:5.2f}x "
                            f"({on_cpu - off_cpu:+.0f} us), throughput {on_rps / off_rps:6.1%} of off, "
                            f"p50 {on_p50 / off_p50:5.2f}x ({on_p50 - off_p50:+.2f} ms)"
                        )
            print(
                f"\nthe stand-in collector took {collector.exports} exports, {collector.bytes / 1024:.0f} KiB "
                f"(spans are exported only by the processes with tracing on)"
            )

        # the same reads in one process, timed by CPU: what contention on a shared machine moves least
        print("\nin-process CPU per request (us; the httpx client's included, the same in every row)")
        print(f"{'path':<10}{'tracing':>9}{'fastest':>9}{'median':>9}{'+ exporter':>12}")
        cpu: dict[tuple[str, str], dict[str, float]] = {}
        for target in ("catalog", "gateway"):
            for mode, extra in modes.items():
                child_env = {**os.environ, **env, **extra, "CATALOG_URL": urls[("off", "catalog")]}
                out = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, __file__, "--child", target, path, "--batches", str(args.batches)],
                    cwd=ROOT,
                    env=child_env,
                    capture_output=True,
                    text=True,
                    timeout=300,
                    check=True,
                )
                r = cpu[(target, mode)] = json.loads(out.stdout.strip().splitlines()[-1])
                print(f"{target:<10}{mode:>9}{r['min']:>9.0f}{r['median']:>9.0f}{r['all_threads']:>12.0f}")
        for target in ("catalog", "gateway"):
            off = cpu[(target, "off")]
            for mode in ("on", "on 10%"):
                on = cpu[(target, mode)]
                print(
                    f"{target:8} {mode:7}: fastest batch +{on['min'] - off['min']:.0f} us "
                    f"({on['min'] / off['min']:.2f}x), with the exporter's thread "
                    f"+{on['all_threads'] - off['all_threads']:.0f} us ({on['all_threads'] / off['all_threads']:.2f}x)"
                )
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        await runner.cleanup()
        await drop_database(settings.db_url)
    print(f"total {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    asyncio.run(main())
