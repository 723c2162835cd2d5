"""CPU time per request: what each part spends on one request of a path, the figure that holds still.

On a shared two-core machine a latency or a rate moves by 40% from one run to the next with
what else runs; the CPU a process spends per request it serves hardly moves (only the
caches it shares do). So each path below is driven at c=16 from loopback (aiohttp,
closed loop) through the gateway, and every part's process CPU time (``utime + stime`` of
``/proc/<pid>/stat``, all its threads) is read before and after: CPU-ms per request is
that difference, less what the part spends idle (its pollers, measured first), over the
requests answered. Latency is printed beside it with the load average.

With ``--baseline REF`` (bench/stack.py) the gateway, catalog and cart of another commit run
beside this checkout's, on the same databases, Redis and broker and the same other parts,
and both are driven in alternating slices: every figure is then also a ratio against that
baseline, measured in the same run. ``--profile DIR`` records each part with py-spy during
this checkout's slices and prints where its time goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measuring import Row, Sample, closed_loop, pct, session, warm  # noqa: E402
from libs.common.testing.apps import free_port  # noqa: E402
from tests.e2e.stack import Stack  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
# the parts a baseline brings its own copy of: the ones on the measured paths
COMPARED = ("gateway", "catalog", "cart")
CONCURRENCY = 16


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (every thread of it), and of its live children
    (a server that runs its app in worker processes, as granian does)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / TICK  # utime, stime: fields 14 and 15 of stat(5)
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            for child in (task / "children").read_text().split():
                with contextlib.suppress(OSError):
                    total += cpu_seconds(int(child))
    return total


@dataclass
class CostPath:
    """A path through the shop: the URLs it sends and the parts that serve it."""

    name: str
    urls: Callable[[], Iterator[str]]
    parts: tuple[str, ...]
    signed_in: bool = False


@dataclass
class Side:
    """One set of processes answering a path: this checkout's, or the baseline's."""

    name: str
    gateway: str
    pids: dict[str, int]
    idle: dict[str, float] = field(default_factory=dict)  # CPU seconds per second at rest
    cpu: dict[tuple[str, str], float] = field(default_factory=dict)  # (path, part) -> CPU seconds
    samples: dict[str, Sample] = field(default_factory=dict)

    def per_request(self, path: str, part: str) -> float:
        """CPU-ms per request of ``part`` on ``path``."""
        sample = self.samples[path]
        served = len(sample.latencies)
        if not served:
            return float("nan")
        busy = self.cpu[(path, part)] - self.idle.get(part, 0.0) * sample.elapsed
        return max(0.0, busy) * 1000 / served


def paths(product_ids: list[str]) -> list[CostPath]:
    rng = random.Random(11)
    categories = ("clothing", "shoes", "electronics", "home-kitchen", "books", "audio", "laptops", "fitness")
    ranges = [
        f"/products?category={c}&price_min={lo}&price_max={lo + width}"
        for c, lo, width in itertools.product(categories, range(1000, 40000, 10), (2500, 5000, 10000))
    ]
    rng.shuffle(ranges)
    return [
        CostPath(
            "guest GET /products (cached list)",
            lambda: itertools.repeat("/products?page_size=20"),
            ("gateway", "catalog"),
        ),
        CostPath(
            "guest GET /products, varying price ranges (uncached)",
            lambda: iter(ranges),  # never repeated within the run: the micro-cache never answers
            ("gateway", "catalog"),
        ),
        CostPath(
            "signed-in GET /cart (3 lines)", lambda: itertools.repeat("/cart"), ("gateway", "cart"), True
        ),
    ]


def chosen(cost_paths: list[CostPath], words: str | None) -> list[CostPath]:
    """The paths whose name holds one of the comma-separated ``words`` (all without): a change to one
    part is measured on its own path, in a run a third as long."""
    if not words:
        return cost_paths
    wanted = [w.strip().lower() for w in words.split(",") if w.strip()]
    picked = [p for p in cost_paths if any(w in p.name.lower() for w in wanted)]
    if not picked:
        raise SystemExit(f"no CPU-per-request path matches {words!r}: {[p.name for p in cost_paths]}")
    return picked


def _next_of(it: Iterator[str], base: str) -> Callable[[], str | None]:
    return lambda: base + next(it)


async def idle_rates(sides: list[Side], seconds: float = 2.0) -> None:
    """What each part spends doing nothing (outbox polls, feed readers): subtracted from every figure."""
    before = {(s.name, p): cpu_seconds(pid) for s in sides for p, pid in s.pids.items()}
    t0 = time.perf_counter()
    await asyncio.sleep(seconds)
    elapsed = time.perf_counter() - t0
    for s in sides:
        for p, pid in s.pids.items():
            s.idle[p] = (cpu_seconds(pid) - before[(s.name, p)]) / elapsed


@contextlib.asynccontextmanager
async def profiling(pids: dict[str, int], out: Path | None, seconds: float) -> Any:
    """py-spy records each part while the block runs (raw stacks, one file per part)."""
    if out is None:
        yield
        return
    exe = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = [
        subprocess.Popen(
            [
                exe,
                "record",
                "--pid",
                str(pid),
                "--duration",
                str(int(seconds) + 1),
                "--rate",
                "250",
                "--format",
                "raw",
                "--nonblocking",
                "--output",
                str(out / f"{part}.txt"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for part, pid in pids.items()
    ]
    try:
        yield
    finally:
        for proc in procs:
            await asyncio.to_thread(proc.wait)


async def drive(
    sides: list[Side],
    cost_paths: list[CostPath],
    *,
    token: str,
    seconds: float,
    rounds: int,
    profile: Path | None = None,
) -> None:
    """Each path on each side in alternating slices, c=16; CPU read around each slice."""
    for path in cost_paths:
        headers = {"Authorization": f"Bearer {token}"} if path.signed_in else {}
        urls = path.urls()  # one stream of URLs shared by both sides: distinct ones stay distinct
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for side in sides:
                s = await stack.enter_async_context(session(CONCURRENCY, headers=headers))
                await warm(
                    s, side.gateway + ("/cart" if path.signed_in else "/products?page_size=20"), CONCURRENCY
                )
                clients[side.name] = s
                side.samples[path.name] = Sample()
            for r in range(rounds):
                order = sides if r % 2 == 0 else sides[::-1]
                for side in order:
                    pids = {p: side.pids[p] for p in path.parts}
                    before = {p: cpu_seconds(pid) for p, pid in pids.items()}
                    # py-spy on this checkout's processes in the last round only: it costs them CPU
                    rec = (
                        profile / path.name.split(" (")[0].replace(" ", "_").replace("/", "")
                        if profile
                        else None
                    )
                    if rec is not None and (side is not sides[0] or r != rounds - 1):
                        rec = None
                    if rec is not None:
                        rec.mkdir(parents=True, exist_ok=True)
                    async with profiling(pids, rec, seconds):
                        sample = await closed_loop(
                            clients[side.name],
                            _next_of(urls, side.gateway),
                            concurrency=CONCURRENCY,
                            seconds=seconds,
                        )
                    if rec is not None:
                        continue  # profiled: its CPU is py-spy's as much as the part's
                    side.samples[path.name].add(sample)
                    for p, pid in pids.items():
                        side.cpu[(path.name, p)] = (
                            side.cpu.get((path.name, p), 0.0) + cpu_seconds(pid) - before[p]
                        )


def rows(sides: list[Side], cost_paths: list[CostPath], goals: dict[tuple[str, str], float]) -> list[Row]:
    """One row per path and part: CPU-ms per request (and against the baseline), latency beside it."""
    head = sides[0]
    base = next((s for s in sides if s.name == "baseline"), None)
    others = [s for s in sides[1:] if s is not base]  # this checkout served another way (--granian)
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    out = []
    for path in cost_paths:
        sample = head.samples[path.name]
        latency = (
            f"{sample.rps:.0f} req/s, p50 {pct(sample.latencies, 0.5):.1f} ms, p95 {pct(sample.latencies, 0.95):.1f} ms"
            f" at load {load}" + sample.said()
        )
        if base is not None:
            b = base.samples[path.name]
            latency += f" (baseline {b.rps:.0f} req/s, p95 {pct(b.latencies, 0.95):.1f} ms)" + b.said()
        for part in path.parts:
            ms = head.per_request(path.name, part)
            figure = f"{ms:.3f} CPU-ms/request"
            values: dict[str, Any] = {
                "path": path.name,
                "part": part,
                "cpu_ms": round(ms, 4),
                "requests": len(sample.latencies),
                **{k: v for k, v in sample.figures().items() if k != "failures"},
                "load": list(os.getloadavg()),
            }
            if base is not None:
                was = base.per_request(path.name, part)
                figure += f" (baseline {was:.3f}: x{ms / was:.2f})" if was else ""
                values["baseline_cpu_ms"] = round(was, 4)
                values["ratio"] = round(ms / was, 3) if was else None
            goal = goals.get((path.name, part))
            out.append(
                Row(
                    f"CPU per request, {part}: {path.name}, c={CONCURRENCY}",
                    f"{figure}; {latency}" if part == path.parts[0] else figure,
                    f"< {goal:g} CPU-ms" if goal else "-",
                    (ms < goal and not sample.errors) if goal else None,
                    values,
                )
            )
        for other in others:
            ms, was = other.per_request(path.name, "gateway"), head.per_request(path.name, "gateway")
            o = other.samples[path.name]
            out.append(
                Row(
                    f"CPU per request, gateway under {other.name}: {path.name}, c={CONCURRENCY}",
                    f"{ms:.3f} CPU-ms/request (uvicorn {was:.3f}: x{ms / was:.2f}); {o.rps:.0f} req/s, "
                    f"p95 {pct(o.latencies, 0.95):.1f} ms" + o.said(),
                    "-",
                    None,
                    {
                        "path": path.name,
                        "server": other.name,
                        "cpu_ms": round(ms, 4),
                        "uvicorn_cpu_ms": round(was, 4),
                    },
                )
            )
    return out


def summarise_profile(folder: Path, top: int = 12) -> str:
    """The functions each part spent its samples in (self time, and the frames they ran under)."""
    lines = []
    for trace in sorted(folder.rglob("*.txt")):
        own: Counter[str] = Counter()
        under: Counter[str] = Counter()
        total = 0
        for line in trace.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            total += n
            frames = stack.split(";")
            own[_short(frames[-1])] += n
            for f in {_short(f) for f in frames}:
                under[f] += n
        if not total:
            continue
        lines.append(f"--- {trace.parent.name} / {trace.stem}: {total} samples")
        lines.append("  self: " + "; ".join(f"{f} {n / total:.0%}" for f, n in own.most_common(top)))
        lines.append(
            "  inclusive: " + "; ".join(f"{f} {n / total:.0%}" for f, n in under.most_common(top * 2))
        )
    return "\n".join(lines)


def _short(frame: str) -> str:
    # "name (path/to/module.py:123)" -> "name (module.py)"
    name, _, where = frame.partition(" (")
    module = where.rsplit("/", 1)[-1].split(":")[0].rstrip(")")
    return f"{name} ({module})"


# --- a baseline's parts beside this checkout's ----------------------------------------------------


def baseline_tree(ref: str) -> Path:
    """``ref``'s files (git archive) in a temporary folder."""
    tree = Path(tempfile.mkdtemp(prefix="shop-bench-baseline-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return tree


async def start_baseline(head: Stack, tree: Path, workdir: Path) -> Stack:
    """The baseline's gateway, catalog and cart on ports of their own; every other part is head's."""
    ports = dict(head.ports)
    for part in COMPARED:
        ports[part] = free_port()
    base = Stack(
        infra=head.infra,
        workdir=workdir,
        mail=head.mail,
        ports=ports,
        internal_token=head.internal_token,
        extra_env=dict(head.extra_env),
        sources={p: tree for p in COMPARED},
    )
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        for part in COMPARED:
            base.start(part)
        await asyncio.gather(*(base.wait_ready(p) for p in COMPARED))
    except BaseException:
        stop_baseline(base)  # one that could not start (a migration it does not know) stops the others
        raise
    return base


async def start_granian_gateway(head: Stack, workdir: Path) -> subprocess.Popen[bytes]:
    """This checkout's gateway served by granian instead of uvicorn, beside the other (a measure only)."""
    port = free_port()
    env = {**head.env("gateway"), "PORT": str(port)}
    workdir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--factory",
            "gateway.app:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--workers",
            "1",
            "--runtime-threads",
            "1",
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env=env,
        stdout=(workdir / "granian.log").open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.monotonic() + 30
    async with aiohttp.ClientSession() as s:
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with s.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    if resp.status == 200:
                        proc.gateway = f"http://127.0.0.1:{port}"  # type: ignore[attr-defined]
                        return proc
            await asyncio.sleep(0.2)
    proc.kill()
    raise RuntimeError("the gateway under granian did not start")


def stop_baseline(base: Stack) -> None:
    for part in COMPARED:
        base.stop(part)


async def customer_with_cart(gateway: str, token: str, product_ids: list[str]) -> None:
    """Three lines in the customer's cart, so GET /cart reads something."""
    async with aiohttp.ClientSession(base_url=gateway, headers={"Authorization": f"Bearer {token}"}) as s:
        for pid in product_ids[:3]:
            async with s.get(f"/products/{pid}") as resp:
                variants = (await resp.json()).get("variants") or [{}]
            line = {"product_id": pid, "quantity": 1}
            if variants[0].get("id"):
                line["variant_id"] = variants[0]["id"]
            async with s.post("/cart", json=line) as resp:
                if resp.status not in (200, 201):
                    raise RuntimeError(f"POST /cart answered {resp.status}: {await resp.text()}")
