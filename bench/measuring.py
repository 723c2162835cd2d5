"""What bench/stack.py measures with: closed-loop HTTP load, percentiles, memory, the table.

Kept apart from the scenarios so each reads on its own; nothing here knows the shop.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiohttp


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else float("nan")


@dataclass
class Sample:
    latencies: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)  # status or exception -> count

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.elapsed += other.elapsed
        for kind, count in other.failures.items():
            self.failures[kind] = self.failures.get(kind, 0) + count

    @property
    def errors(self) -> int:
        return sum(self.failures.values())

    def said(self) -> str:
        """``"; 5 errors (503 x 5)"``, or nothing when every answer was a 200."""
        kinds = ", ".join(f"{kind} x {count}" for kind, count in sorted(self.failures.items()))
        return f"; {self.errors} errors ({kinds})" if self.failures else ""

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def figures(self) -> dict[str, Any]:
        return {
            "requests": len(self.latencies),
            "rps": round(self.rps, 1),
            "p50_ms": round(pct(self.latencies, 0.5), 2),
            "p95_ms": round(pct(self.latencies, 0.95), 2),
            "p99_ms": round(pct(self.latencies, 0.99), 2),
            "errors": self.errors,
            "failures": self.failures,
        }


async def closed_loop(
    session: aiohttp.ClientSession, urls: Callable[[], str | None], *, concurrency: int, seconds: float
) -> Sample:
    """``concurrency`` workers send GETs back to back until ``seconds`` pass or ``urls`` runs out."""
    sample = Sample()
    stop = time.perf_counter() + seconds

    async def one() -> None:
        while (t0 := time.perf_counter()) < stop and (url := urls()) is not None:
            try:
                async with session.get(url) as resp:
                    await resp.read()
                    kind = None if resp.status == 200 else str(resp.status)
            except aiohttp.ClientError as exc:
                kind = type(exc).__name__
            if kind is not None:
                sample.failures[kind] = sample.failures.get(kind, 0) + 1
            sample.latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(concurrency)))
    sample.elapsed = time.perf_counter() - start
    return sample


def session(concurrency: int, **kw: Any) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency), **kw)


async def warm(s: aiohttp.ClientSession, url: str, concurrency: int) -> None:
    """Open every keep-alive connection (and fill caches) before anything is timed."""
    for _ in range(2):
        await closed_loop(s, pool([url] * concurrency), concurrency=concurrency, seconds=10)


def pool(urls: list[str]) -> Callable[[], str | None]:
    it = iter(urls)
    return lambda: next(it, None)


# --- memory ------------------------------------------------------------------------------------


class RssSampler:
    """Resident memory of each part, sampled every half second; keeps the peak."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak: dict[str, int] = {}

    def read(self) -> dict[str, int]:
        rss: dict[str, int] = {}
        for part, pid in self.pids.items():
            with contextlib.suppress(OSError):
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss[part] = int(line.split()[1])  # kB
        for part, kb in rss.items():
            self.peak[part] = max(self.peak.get(part, 0), kb)
        return rss

    async def run(self) -> None:
        while True:
            self.read()
            await asyncio.sleep(0.5)


# --- the report --------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    figure: str
    goal: str = "-"
    met: bool | None = None
    values: dict[str, Any] = field(default_factory=dict)

    def cells(self) -> list[str]:
        return [self.measure, self.figure, self.goal, {True: "yes", False: "NO", None: "-"}[self.met]]


def machine() -> dict[str, Any]:
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown",
    )
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "python": platform.python_version(),
        "load_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def render(info: dict[str, Any], rows: list[Row]) -> str:
    head = (
        f"machine: {info['nproc']} CPUs ({info['cpu']}), Python {info['python']}, load average "
        f"{' '.join(map(str, info['load_at_start']))} at start, {' '.join(map(str, info.get('load_at_end', [])))}"
        f" at end\n{info.get('config', '')}\n"
    )
    table = [["measure", "figure", "goal", "met?"], *(r.cells() for r in rows)]
    widths = [max(len(line[i]) for line in table) for i in range(4)]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) + " |" for line in table
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return head + "\n".join(lines)


def run_and_report(
    run: Callable[[argparse.Namespace, dict[str, Any]], Coroutine[Any, Any, tuple[list[Row], bool]]],
    args: argparse.Namespace,
) -> NoReturn:
    """A bench script's end: run it on uvloop, print the table, keep it as JSON when asked (``args.json``),
    and exit 1 when a goal was not met."""
    with contextlib.suppress(ImportError):
        import uvloop

        uvloop.install()
    info = machine()
    rows, ok = asyncio.run(run(args, info))
    print("\n" + render(info, rows))
    if args.json:
        args.json.write_text(
            json.dumps({"machine": info, "rows": [r.__dict__ for r in rows]}, indent=2) + "\n"
        )
    sys.exit(0 if ok else 1)
