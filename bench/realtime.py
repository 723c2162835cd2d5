"""Realtime fan-out and event latency, measured on loopback.

Starts the realtime service as its own process (and, with ``--gateway``, the gateway in
front of it) on the local RabbitMQ/Redis under throw-away names, connects N
python-socketio clients (websocket transport) from this process, publishes
``product.updated`` events on the real exchange and prints how long until each client
had each one (p50/p99/max over every delivery, and the time until the last of the N
had it), then the event -> admin latency of ``order.created``. Bounded: about a minute.

    python bench/realtime.py [--clients 1000] [--rounds 5] [--events 100] [--gateway]

The clock is this process's: the time runs from "publish called" (broker confirm
included) to "client callback ran", so the clients' own decoding (all N share this
process's one core) is part of the figure.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import socketio

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libs.common.events import Envelope  # noqa: E402
from libs.common.events.amqp import AmqpBus  # noqa: E402
from libs.common.testing.apps import free_port  # noqa: E402
from libs.common.testing.infra import Infra  # noqa: E402
from libs.common.testing.keys import TestKeys  # noqa: E402

DEADLINE = 60.0


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


async def wait_up(url: str, proc: subprocess.Popen[bytes]) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/healthz")).status_code == 200:
                    return
            await asyncio.sleep(0.1)
    raise TimeoutError(url)


async def connect_many(url: str, n: int, arrivals: dict[str, list[float]]) -> list[socketio.AsyncClient]:
    clients: list[socketio.AsyncClient] = []

    async def one() -> None:
        c = socketio.AsyncClient(reconnection=False)

        @c.on("product:updated")
        async def got(payload: dict[str, Any]) -> None:
            arrivals.setdefault(payload["data"]["run"], []).append(time.perf_counter())

        await c.connect(url, transports=["websocket"], wait_timeout=20)
        clients.append(c)

    for start in range(0, n, 100):
        await asyncio.gather(*(one() for _ in range(min(100, n - start))))
    return clients


async def fan_out(bus: AmqpBus, url: str, n: int, rounds: int) -> tuple[list[float], list[float], int]:
    """Every delivery's latency, each round's time until all had it, and deliveries missed."""
    arrivals: dict[str, list[float]] = {}
    started = time.perf_counter()
    clients = await connect_many(url, n, arrivals)
    print(f"  {n} clients connected in {time.perf_counter() - started:.1f} s", flush=True)
    await asyncio.sleep(1)
    every: list[float] = []
    alls: list[float] = []
    missed = 0
    try:
        for _ in range(rounds):
            run = uuid.uuid4().hex
            sent = time.perf_counter()
            await bus.publish(Envelope.new("product.updated", {"id": str(uuid.uuid4()), "run": run},
                                           producer="bench"))
            deadline = time.monotonic() + 10
            while len(arrivals.get(run, [])) < n and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
            got = arrivals.get(run, [])
            every.extend(t - sent for t in got)
            missed += n - len(got)
            if len(got) == n:
                alls.append(max(got) - sent)
            await asyncio.sleep(0.5)
    finally:
        await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)
    return every, alls, missed


async def admin_latency(bus: AmqpBus, url: str, token: str, events: int) -> list[float]:
    sent: dict[str, float] = {}
    seen: list[float] = []
    c = socketio.AsyncClient(reconnection=False)

    @c.on("order:created")
    async def got(payload: dict[str, Any]) -> None:
        if (t0 := sent.get(payload["data"]["order_id"])) is not None:
            seen.append(time.perf_counter() - t0)

    await c.connect(url, auth={"token": token}, transports=["websocket"], wait_timeout=20)
    for _ in range(events):
        order_id = str(uuid.uuid4())
        sent[order_id] = time.perf_counter()
        await bus.publish(Envelope.new("order.created", {"order_id": order_id, "user_id": str(uuid.uuid4())},
                                       producer="bench"))
        await asyncio.sleep(0.02)
    await asyncio.sleep(1)
    await c.disconnect()
    return seen


def start(module: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", module], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def main(args: argparse.Namespace) -> None:
    infra = Infra.from_env()
    keys = TestKeys()
    ports = {"realtime": free_port(), "gateway": free_port()}
    env = {**os.environ, **infra.env(), "JWKS_URL": keys.jwks_url, "LOG_LEVEL": "WARNING",
           "REALTIME_URL": f"http://127.0.0.1:{ports['realtime']}",
           "RATE_LIMITS": '{"default": {"rate": 100000, "burst": 100000}, '
                          '"socket": {"rate": 100000, "burst": 100000}}'}
    procs = {"realtime": start("services.realtime", {**env, "PORT": str(ports["realtime"])})}
    if args.gateway:
        procs["gateway"] = start("gateway", {**env, "PORT": str(ports["gateway"])})
    bus = AmqpBus(infra.amqp_url, exchange=infra.exchange, queue_prefix=infra.queue_prefix)
    rows: list[tuple[str, list[float]]] = []
    try:
        async with asyncio.timeout(DEADLINE):
            targets = {"direct": f"http://127.0.0.1:{ports['realtime']}"}
            if args.gateway:
                targets["through the gateway"] = f"http://127.0.0.1:{ports['gateway']}"
            await asyncio.gather(*(wait_up(url, procs[name]) for name, url in
                                   zip(procs, targets.values(), strict=True)))
            await bus.start()
            await asyncio.sleep(0.5)
            for label, url in targets.items():
                print(f"fan-out {label}:", flush=True)
                every, alls, missed = await fan_out(bus, url, args.clients, args.rounds)
                rows.append((f"event -> each of {args.clients} clients, {label}", every))
                rows.append((f"event -> last of {args.clients} clients ({len(alls)} rounds), {label}", alls))
                if missed:
                    print(f"  {missed} deliveries missing after 10 s", flush=True)
            lat = await admin_latency(bus, targets["direct"], keys.mint(role="admin"), args.events)
            rows.append((f"order.created -> admin ({len(lat)}/{args.events} events)", lat))
    finally:
        print(f"\n{'measure':64} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, values in rows:
            if values:
                print(f"{label:64} {pct(values, .5):8.1f} {pct(values, .99):8.1f} {max(values) * 1000:8.1f}")
        await bus.close()
        for proc in procs.values():
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
        keys.close()
        await infra.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--gateway", action="store_true", help="also measure through the gateway")
    asyncio.run(main(parser.parse_args()))
