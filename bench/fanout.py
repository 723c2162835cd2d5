"""Socket.IO clients in worker processes that time a real product update reaching each of them.

bench/realtime.py's workers key arrivals on ``data.run``, a field only its hand-made
events carry. A real ``product.updated`` (an admin changing a price over REST) carries the
Product shape and nothing else, so these workers key on the product's id and new price:
the driver changes the price to a value not used before and waits for every client to
report it. Everything else (the stdin/stdout protocol, merging the arrivals) is
bench/realtime.py's ``Workers``; only the command that starts a worker differs.

    python bench/fanout.py --url http://127.0.0.1:8000 --clients 500 --product <id>
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import socketio

HERE = Path(__file__).resolve().parent
EVENT = "product:updated"


def _load_realtime_bench() -> Any:
    # bench/ is not a package, and "gateway" / "realtime" are names the project's packages take
    spec = importlib.util.spec_from_file_location("bench_realtime", HERE / "realtime.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


realtime_bench = _load_realtime_bench()


def price_key(product_id: str, price: int) -> str:
    return f"{product_id}:{price}"


async def worker(url: str, n: int, product_id: str) -> None:
    """Connect ``n`` guests, say ``complete <key>`` once all of them saw a price, report on stdin."""
    arrivals: dict[str, list[float]] = {}
    clients: list[socketio.AsyncClient] = []
    out = sys.stdout

    async def one() -> None:
        c = socketio.AsyncClient(reconnection=False)

        @c.on(EVENT)
        async def got(payload: dict[str, Any]) -> None:
            data = payload.get("data") or {}
            if data.get("id") != product_id:
                return
            key = price_key(product_id, data["price"])
            times = arrivals.setdefault(key, [])
            times.append(time.perf_counter())
            if len(times) == n:
                out.write(f"complete {key}\n")
                out.flush()

        await c.connect(url, transports=["websocket"], wait_timeout=30)
        clients.append(c)

    for start in range(0, n, 50):
        await asyncio.gather(*(one() for _ in range(min(50, n - start))))
    out.write(f"ready {len(clients)}\n")
    out.flush()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    out.write("arrivals " + json.dumps(arrivals) + "\n")
    out.flush()
    await asyncio.gather(*(c.disconnect() for c in clients), return_exceptions=True)


class PriceWorkers(realtime_bench.Workers):  # type: ignore[misc,name-defined]
    """bench/realtime.py's worker pool, running this file's price-keyed workers."""

    def __init__(self, url: str, n: int, product_id: str, processes: int = 2) -> None:
        super().__init__(url, n)
        self.product_id = product_id
        self.processes = processes

    async def __aenter__(self) -> PriceWorkers:
        shares = [
            self.n // self.processes + (1 if i < self.n % self.processes else 0)
            for i in range(self.processes)
        ]
        for share in shares:
            self.procs.append(
                await asyncio.create_subprocess_exec(
                    sys.executable,
                    __file__,
                    "--url",
                    self.url,
                    "--clients",
                    str(share),
                    "--product",
                    self.product_id,
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

    async def __aexit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:  # a deadline or an error: nobody will ask for their report
            for proc in self.procs:
                if proc.returncode is None:
                    proc.kill()
        await super().__aexit__(exc_type, *rest)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--product", required=True)
    args = parser.parse_args()
    asyncio.run(worker(args.url, args.clients, args.product))
