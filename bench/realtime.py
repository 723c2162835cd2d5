"""Realtime fan-out and event latency, measured on loopback.

Starts the realtime service as its own process (and, with ``--gateway``, the gateway in
front of it) on the local RabbitMQ/Redis under throw-away names. N python-socketio clients
(websocket transport) run in separate worker processes, so the clients' decoding does
not share a core with the server being measured. Each round publishes one
``product.updated`` event on the real exchange; the figures are the time from "publish
called" (broker confirm included) to "client callback ran" for every delivery, and to
the last of the N. The baseline, measured in the same run with the same workers, is a
bare python-socketio server under uvicorn broadcasting the same payload (time from the
HTTP request that makes it emit). Then the event -> admin latency of ``order.created``.
Bounded: about two minutes.

    python bench/realtime.py [--clients 1000] [--rounds 5] [--events 100] [--gateway]

Clocks: the workers and this process read CLOCK_MONOTONIC (``time.perf_counter``), which
is one clock for every process of the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
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

DEADLINE = 150.0
WORKERS = 2
EVENT = "product:updated"


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


# --- a worker process: n clients, arrival times reported on stdout ---------------------------


async def worker(url: str, n: int) -> None:
    arrivals: dict[str, list[float]] = {}
    clients: list[socketio.AsyncClient] = []
    out = sys.stdout

    async def one() -> None:
        c = socketio.AsyncClient(reconnection=False)

        @c.on(EVENT)
        async def got(payload: dict[str, Any]) -> None:
            run = payload["data"]["run"]
            times = arrivals.setdefault(run, [])
            times.append(time.perf_counter())
            if len(times) == n:
                out.write(f"complete {run}\n")
                out.flush()

        await c.connect(url, transports=["websocket"], wait_timeout=30)
        clients.append(c)

    for start in range(0, n, 50):
        await asyncio.gather(*(one() for _ in range(min(50, n - start))))
    out.write(f"ready {len(clients)}\n")
    out.flush()
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)  # the parent says when to report
    out.write("arrivals " + json.dumps(arrivals) + "\n")
    out.flush()
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


class Workers:
    """Client worker processes, driven over their stdin/stdout."""

    def __init__(self, url: str, n: int) -> None:
        self.url, self.n = url, n
        self.procs: list[asyncio.subprocess.Process] = []
        self.complete: dict[str, int] = {}

    async def __aenter__(self) -> Workers:
        shares = [self.n // WORKERS + (1 if i < self.n % WORKERS else 0) for i in range(WORKERS)]
        for share in shares:
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "worker",
                    "--url",
                    self.url,
                    "--clients",
                    str(share),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    limit=2**26,
                )
            )
        for proc in self.procs:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            if not line.startswith("ready"):
                raise RuntimeError(f"a client worker failed to connect its clients: {line!r}")
        self.readers = [asyncio.create_task(self._read(p)) for p in self.procs]
        return self

    async def _read(self, proc: asyncio.subprocess.Process) -> str:
        while True:
            line = (await proc.stdout.readline()).decode()  # type: ignore[union-attr]
            if line.startswith("complete "):
                run = line.split()[1]
                self.complete[run] = self.complete.get(run, 0) + 1
            else:
                return line

    async def wait_round(self, run: str, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while self.complete.get(run, 0) < len(self.procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.005)

    async def arrivals(self) -> dict[str, list[float]]:
        merged: dict[str, list[float]] = {}
        for proc in self.procs:
            proc.stdin.write(b"report\n")  # type: ignore[union-attr]
            await proc.stdin.drain()  # type: ignore[union-attr]
        for reader in self.readers:
            line = await reader
            for run, times in json.loads(line.removeprefix("arrivals ")).items():
                merged.setdefault(run, []).extend(times)
        return merged

    async def __aexit__(self, *_: object) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                if proc.returncode is None:
                    await asyncio.wait_for(proc.wait(), 15)
            if proc.returncode is None:
                proc.kill()


async def fan_out(url: str, n: int, rounds: int, emit: Any) -> tuple[list[float], list[float], int]:
    """Every delivery's latency, each round's time until all had it, and deliveries missed."""
    started = time.perf_counter()
    sent: dict[str, float] = {}
    async with Workers(url, n) as workers:
        print(f"  {n} clients connected in {time.perf_counter() - started:.1f} s", flush=True)
        await asyncio.sleep(1)
        for _ in range(rounds):
            run = uuid.uuid4().hex
            sent[run] = time.perf_counter()
            await emit(run)
            await workers.wait_round(run)
            await asyncio.sleep(0.3)
        arrivals = await workers.arrivals()
    every: list[float] = []
    alls: list[float] = []
    missed = 0
    for run, t0 in sent.items():
        got = arrivals.get(run, [])
        every.extend(t - t0 for t in got)
        missed += n - len(got)
        if len(got) == n:
            alls.append(max(got) - t0)
    return every, alls, missed


# --- the baseline: a bare python-socketio server ----------------------------------------------


def bare_server(port: int) -> None:
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    sio = socketio.AsyncServer(async_mode="asgi")

    async def emit(request: Request) -> JSONResponse:
        run = request.query_params["run"]
        await sio.emit(EVENT, {"event_id": run, "seq": 1, "data": {"id": run, "run": run}})
        return JSONResponse({"ok": True})

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    web = Starlette(routes=[Route("/emit", emit, methods=["POST"]), Route("/healthz", healthz)])
    uvicorn.run(
        socketio.ASGIApp(sio, web),
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
    )


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
        await bus.publish(
            Envelope.new(
                "order.created", {"order_id": order_id, "user_id": str(uuid.uuid4())}, producer="bench"
            )
        )
        await asyncio.sleep(0.02)
    await asyncio.sleep(1)
    await c.disconnect()
    return seen


def start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, *argv], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


async def main(args: argparse.Namespace) -> dict[str, dict[str, float]]:
    infra = Infra.from_env()
    keys = TestKeys()
    ports = {"realtime": free_port(), "gateway": free_port(), "bare": free_port()}
    env = {
        **os.environ,
        **infra.env(),
        "JWKS_URL": keys.jwks_url,
        "LOG_LEVEL": "WARNING",
        "REALTIME_URL": f"http://127.0.0.1:{ports['realtime']}",
        "RATE_LIMITS": '{"default": {"rate": 100000, "burst": 100000}, '
        '"socket": {"rate": 100000, "burst": 100000}}',
    }
    procs = {
        "bare": start([__file__, "bare", "--port", str(ports["bare"])], env),
        "realtime": start(["-m", "services.realtime"], {**env, "PORT": str(ports["realtime"])}),
    }
    if args.gateway:
        procs["gateway"] = start(["-m", "gateway"], {**env, "PORT": str(ports["gateway"])})
    urls = {name: f"http://127.0.0.1:{ports[name]}" for name in procs}
    print("pids (for py-spy): " + ", ".join(f"{name} {proc.pid}" for name, proc in procs.items()), flush=True)
    bus = AmqpBus(infra.amqp_url, exchange=infra.exchange, queue_prefix=infra.queue_prefix)
    rows: list[tuple[str, list[float]]] = []
    results: dict[str, dict[str, float]] = {}
    n = args.clients
    try:
        async with asyncio.timeout(DEADLINE), httpx.AsyncClient() as http:
            await asyncio.gather(*(wait_up(urls[name], proc) for name, proc in procs.items()))
            await bus.start()
            await asyncio.sleep(0.5)

            async def bare_emit(run: str) -> None:
                (await http.post(f"{urls['bare']}/emit", params={"run": run})).raise_for_status()

            async def publish(run: str) -> None:
                await bus.publish(
                    Envelope.new("product.updated", {"id": str(uuid.uuid4()), "run": run}, producer="bench")
                )

            targets = [
                ("baseline: bare python-socketio", urls["bare"], bare_emit),
                ("RabbitMQ -> realtime", urls["realtime"], publish),
            ]
            if args.gateway:
                targets.append(("RabbitMQ -> realtime -> gateway", urls["gateway"], publish))
            for label, url, emit in targets:
                print(f"fan-out, {label}:", flush=True)
                every, alls, missed = await fan_out(url, n, args.rounds, emit)
                rows.append((f"{label}: each of {n} clients", every))
                rows.append((f"{label}: last of {n} ({len(alls)}/{args.rounds} rounds)", alls))
                if every:
                    results[label] = {
                        "p50_ms": pct(every, 0.5),
                        "p99_ms": pct(every, 0.99),
                        "max_ms": max(every) * 1000,
                        "missed": missed,
                    }
                if missed:
                    print(f"  {missed} deliveries missing after 10 s", flush=True)
            lat = await admin_latency(bus, urls["realtime"], keys.mint(role="admin"), args.events)
            rows.append((f"order.created -> admin ({len(lat)}/{args.events} events)", lat))
            if lat:
                results["order.created -> admin"] = {
                    "p50_ms": pct(lat, 0.5),
                    "p99_ms": pct(lat, 0.99),
                    "max_ms": max(lat) * 1000,
                    "missed": args.events - len(lat),
                }
    finally:
        print(f"\n{'measure':64} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
        for label, values in rows:
            if values:
                print(
                    f"{label:64} {pct(values, 0.5):8.1f} {pct(values, 0.99):8.1f} {max(values) * 1000:8.1f}"
                )
        base = results.get("baseline: bare python-socketio")
        for label, figures in results.items():
            if base and label.startswith("RabbitMQ"):
                print(f"p99 ratio to the bare server, {label}: {figures['p99_ms'] / base['p99_ms']:.2f}")
        await bus.close()
        for proc in procs.values():
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
            if proc.poll() is None:
                proc.kill()
        keys.close()
        await infra.cleanup()
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("mode", nargs="?", default="run", choices=["run", "worker", "bare"])
    parser.add_argument("--clients", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--gateway", action="store_true", help="also measure through the gateway")
    parser.add_argument("--url", help="worker mode: the server to connect to")
    parser.add_argument("--port", type=int, help="bare mode: the port to serve on")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()
    if args.mode == "worker":
        asyncio.run(worker(args.url, args.clients))
    elif args.mode == "bare":
        bare_server(args.port)
    else:
        figures = asyncio.run(main(args))
        if args.json:
            args.json.write_text(json.dumps(figures, indent=2))
