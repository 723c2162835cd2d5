"""A price change reaching many sockets, by each way a socket can reach realtime, in one run.

``make bench`` measures the fan-out through the gateway only. This script starts the shop as
``make up`` does plus a second realtime replica, and times the same real event (an admin
changes a price over REST; catalog -> RabbitMQ -> realtime -> every guest socket) with the
sockets connected:

- through the gateway's websocket relay (``make up``, ``make dev``, compose today);
- straight to realtime (what the Kubernetes Ingress does with ``/socket.io/``);
- straight to realtime, spread over two replicas (the same number of sockets);
- straight to two replicas with that many sockets each.

Beside each figure, the CPU time the gateway and each realtime replica spent per price change
(process CPU over the rounds, divided by the rounds): wall-clock figures on a shared machine
move with its load, CPU per broadcast does not.

    python bench/fanout_paths.py [--sockets 1000] [--rounds 5] [--json PATH]

Needs ``make infra`` first; removes its databases, keys and queues at the end.
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
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.checkout import CREATE_ADMIN, cpu_seconds  # noqa: E402
from bench.fanout import PriceWorkers, price_key  # noqa: E402
from bench.measuring import Row, pct, run_and_report  # noqa: E402
from bench.stack import EXTRA_ENV, take_down  # noqa: E402
from libs.common.testing.apps import free_port  # noqa: E402
from libs.common.testing.infra import Infra  # noqa: E402
from tests.e2e.shopper import admin, make_product  # noqa: E402
from tests.e2e.stack import MailCatcher, Stack  # noqa: E402


async def measure(
    label: str,
    gw: str,
    token: str,
    targets: list[tuple[str, int]],
    rounds: int,
    pids: dict[str, int],
    price: list[int],
) -> Row:
    """Connect ``n`` guests to each (url, n) of ``targets``; change the price ``rounds`` times."""
    async with httpx.AsyncClient(base_url=gw, timeout=20) as http:
        boss = await admin(http)
        product = await make_product(http, boss, stock=10, price=price[0])
    total = sum(n for _, n in targets)
    sent: dict[str, float] = {}
    async with contextlib.AsyncExitStack() as stack:
        t0 = time.perf_counter()
        pools = [await stack.enter_async_context(PriceWorkers(url, n, product["id"])) for url, n in targets]
        print(f"  {label}: {total} sockets connected in {time.perf_counter() - t0:.1f} s", flush=True)
        await asyncio.sleep(1)
        c0 = cpu_seconds(pids)
        async with httpx.AsyncClient(
            base_url=gw, timeout=20, headers={"Authorization": f"Bearer {token}"}
        ) as http:
            for _ in range(rounds):
                price[0] += 1
                key = price_key(product["id"], price[0])
                sent[key] = time.perf_counter()
                resp = await http.patch(f"/admin/products/{product['id']}", json={"price": price[0]})
                resp.raise_for_status()
                await asyncio.gather(*(p.wait_round(key) for p in pools))
                await asyncio.sleep(0.3)
        c1 = cpu_seconds(pids)
        arrivals: dict[str, list[float]] = {}
        for pool in pools:
            for key, times in (await pool.arrivals()).items():
                arrivals.setdefault(key, []).extend(times)
    every: list[float] = []
    missed = 0
    for key, start in sent.items():
        got = arrivals.get(key, [])
        every += [t - start for t in got]
        missed += total - len(got)
    cpu = {part: round((c1[part] - c0.get(part, 0.0)) * 1000 / rounds, 1) for part in c1}
    p99 = pct(every, 0.99)
    values = {
        "sockets": total,
        "rounds": rounds,
        "p50_ms": round(pct(every, 0.5), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(max(every, default=0) * 1000, 1),
        "missed": missed,
        "cpu_ms_per_broadcast": cpu,
        "load": round(os.getloadavg()[0], 1),
    }
    figure = (
        f"p50 {values['p50_ms']} ms, p99 {values['p99_ms']} ms, max {values['max_ms']} ms; CPU-ms per change: "
        + ", ".join(f"{part} {ms}" for part, ms in cpu.items())
        + f"; load {values['load']}"
        + (f"; {missed} deliveries missing" if missed else "")
    )
    row = Row(
        f"price change -> {total} sockets, {label}", figure, "p99 < 250 ms", p99 < 250 and not missed, values
    )
    print(f"  {row.measure}: {row.figure}", flush=True)
    return row


async def run(args: argparse.Namespace, info: dict[str, Any]) -> tuple[list[Row], bool]:
    infra = Infra.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="shop-bench-fanout-"))
    second = free_port()
    stack = Stack(infra=infra, workdir=workdir, mail=MailCatcher(), extra_env=dict(EXTRA_ENV))
    replica: subprocess.Popen[bytes] | None = None
    rows: list[Row] = []
    ok = False
    try:
        async with asyncio.timeout(args.deadline):
            await stack.up()
            await asyncio.to_thread(
                subprocess.run, CREATE_ADMIN, cwd=ROOT, env=stack.env("auth"), check=True, capture_output=True
            )
            env = {**stack.env("realtime"), "PORT": str(second)}
            with (workdir / "realtime.2.log").open("wb") as log:
                replica = subprocess.Popen(
                    [sys.executable, "-m", "services.realtime"], cwd=ROOT, env=env, stdout=log, stderr=log
                )
            async with httpx.AsyncClient() as http:
                for _ in range(300):
                    with contextlib.suppress(httpx.HTTPError):
                        if (await http.get(f"http://127.0.0.1:{second}/healthz")).status_code == 200:
                            break
                    await asyncio.sleep(0.1)
            one, two = stack.url("realtime"), f"http://127.0.0.1:{second}"
            pids = {
                "gateway": stack.procs["gateway"].pid,
                "realtime": stack.procs["realtime"].pid,
                "realtime.2": replica.pid,
            }
            async with httpx.AsyncClient(base_url=stack.gateway, timeout=20) as http:
                token = (await admin(http)).token
            n, price = args.sockets, [10_000]
            cases = {
                "gateway": ("via the gateway", [(stack.gateway, n)]),
                "direct": ("straight to realtime", [(one, n)]),
                "split": ("straight to 2 realtime replicas", [(one, n // 2), (two, n - n // 2)]),
                "double": (f"straight to 2 realtime replicas x {n}", [(one, n), (two, n)]),
            }
            for label, targets in (cases[c] for c in args.cases.split(",")):
                rows.append(await measure(label, stack.gateway, token, targets, args.rounds, pids, price))
            ok = all(r.values.get("missed", 1) == 0 for r in rows)
    except TimeoutError:
        rows.append(Row("deadline", f"cut short after {args.deadline:.0f} s", "finish", False))
    finally:
        if replica is not None:
            replica.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                replica.wait(timeout=10)
            if replica.poll() is None:
                replica.kill()
        await take_down(stack, info, ok)
    return rows, ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sockets", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default="gateway,direct,split,double", help="which, comma-separated")
    parser.add_argument("--deadline", type=float, default=1200.0)
    parser.add_argument("--json", type=Path, help="also write the machine and the table to this file")
    args = parser.parse_args()
    run_and_report(run, args)


if __name__ == "__main__":
    main()
