"""The measuring half of ``make load``: bench/locustfile.py's users driven by locust as a library,
the user count stepped up until the shop stops holding p95 < 200 ms with no error.

Run by bench/load.py in a process of its own (locust patches the standard library for gevent on
import, which the asyncio side of load.py must not see). Each step starts the users it adds, lets
them settle (``--warm``), then counts for ``--step-seconds`` from zeroed statistics. The count
grows by ``--factor`` while steps pass; after the first that fails, the steps halve the gap
between the best that passed and the lowest that failed, until the gap is small or ``--seconds``
is spent. Nothing runs past ``--seconds`` (plus the last step's own length). Writes every step's
figures as JSON to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import gevent
from locust import events
from locust.env import Environment
from locust.runners import STATE_SPAWNING
from locust.stats import StatsEntry

ROOT = Path(__file__).resolve().parent.parent


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, every core."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def entry_figures(entry: StatsEntry, elapsed: float) -> dict[str, Any]:
    return {
        "name": entry.name,
        "method": entry.method,
        "requests": entry.num_requests,
        "failures": entry.num_failures,
        "rps": round(entry.num_requests / elapsed, 1) if elapsed else 0.0,
        "p50_ms": entry.get_response_time_percentile(0.5) if entry.num_requests else None,
        "p95_ms": entry.get_response_time_percentile(0.95) if entry.num_requests else None,
        "p99_ms": entry.get_response_time_percentile(0.99) if entry.num_requests else None,
        "max_ms": round(entry.max_response_time) if entry.num_requests else None,
    }


class Stepper:
    def __init__(self, env: Environment, args: argparse.Namespace, admins: int) -> None:
        self.env, self.args, self.admins = env, args, admins
        self.runner = env.create_local_runner()
        self.steps: list[dict[str, Any]] = []
        self.totals: Counter[str] = Counter()  # requests by name over the whole run
        self.failed: Counter[str] = Counter()  # "<name>: <error>" over the whole run
        events.request.add_listener(self.count)
        events.user_error.add_listener(self.user_error)

    def count(self, request_type: str, name: str, exception: Any = None, **_: Any) -> None:
        self.totals[name] += 1
        if exception is not None:
            self.failed[f"{name}: {str(exception)[:200]}"] += 1

    def user_error(self, user_instance: Any, exception: Exception, tb: Any = None) -> None:
        # an exception in a user's code is the profile failing, whatever the shop answered
        self.failed[f"{type(user_instance).__name__} raised {type(exception).__name__}: {exception}"] += 1

    def step(self, users: int) -> dict[str, Any]:
        current = self.runner.user_count
        # the new users within about a second (locust warns past 100 a second)
        self.runner.start(users, spawn_rate=min(100, max(1, abs(users - current))))
        while self.runner.state == STATE_SPAWNING:
            gevent.sleep(0.1)
        gevent.sleep(self.args.warm)
        self.env.stats.reset_all()
        failed_before = sum(self.failed.values())
        cpu0, busy0, t0 = time.process_time(), cpu_times(), time.perf_counter()
        gevent.sleep(self.args.step_seconds)
        elapsed = time.perf_counter() - t0
        cpu1, busy1 = time.process_time(), cpu_times()
        entries = [e for e in self.env.stats.entries.values() if e.num_requests or e.num_failures]
        served = [e for e in entries if e.method != "SOCKET" and not e.name.startswith("setup ")]
        together = StatsEntry(self.env.stats, "all HTTP requests", "")
        for e in served:
            together.extend(e)
        mix: Counter[str] = Counter()
        for e in served:
            mix[e.name.split(" ", 1)[0]] += e.num_requests
        # failed requests and sockets, and exceptions in the users' own code
        failures = sum(self.failed.values()) - failed_before
        total = together.num_requests
        p95 = together.get_response_time_percentile(0.95) if total else None
        step: dict[str, Any] = {
            "users": users,
            "mix_users": users - self.admins,
            "seconds": round(elapsed, 1),
            "requests": total,
            "rps": round(total / elapsed, 1),
            "p50_ms": together.get_response_time_percentile(0.5) if total else None,
            "p95_ms": p95,
            "p99_ms": together.get_response_time_percentile(0.99) if total else None,
            "failures": failures,
            "errors": [
                {"name": e.name, "error": str(e.error), "occurrences": e.occurrences}
                for e in self.env.stats.errors.values()
            ],
            "passed": bool(total) and p95 is not None and p95 < self.args.p95_ms and failures == 0,
            "mix": {k: round(v / total, 3) for k, v in sorted(mix.items())} if total else {},
            "endpoints": sorted(
                (entry_figures(e, elapsed) for e in entries),
                key=lambda f: (f["method"] == "SOCKET", f["name"]),
            ),
            "generator_cpu": round((cpu1 - cpu0) / elapsed, 2),
            "machine_busy": round((busy1[0] - busy0[0]) / max(1.0, busy1[1] - busy0[1]), 2),
            "load_average": [round(x, 2) for x in os.getloadavg()],
        }
        self.steps.append(step)
        print(
            f"  {users:4d} users ({self.admins} admins): {step['rps']:7.1f} req/s, p50 {step['p50_ms']} ms, "
            f"p95 {p95} ms, {failures} errors -> {'holds' if step['passed'] else 'does NOT hold'} "
            f"(load generator {step['generator_cpu']:.0%} of a core, machine {step['machine_busy']:.0%} busy, "
            f"load average {step['load_average'][0]})",
            flush=True,
        )
        for err in step["errors"][:5]:
            print(f"      {err['occurrences']} x {err['name']}: {err['error'][:160]}", flush=True)
        return step

    def run(self) -> None:
        args = self.args
        stop_at = time.monotonic() + args.seconds
        one_step = args.warm + args.step_seconds
        users = max(args.start_users, self.admins + 1)
        passed: int | None = None  # the most users that held
        failed: int | None = None  # the fewest that did not
        while True:
            step = self.step(users)
            if step["passed"]:
                passed = max(passed or 0, users)
            else:
                failed = min(failed or users, users)
            if time.monotonic() + one_step > stop_at:
                break
            if failed is None:
                users = math.ceil(users * args.factor)
            else:
                low = passed or self.admins
                if failed - low <= max(2, low * 0.1):
                    break
                users = (low + failed) // 2
        self.runner.quit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--plan", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seconds", type=float, default=240, help="the stepping's budget")
    parser.add_argument("--start-users", type=int, default=10)
    parser.add_argument("--factor", type=float, default=1.5, help="users grow by this while steps hold")
    parser.add_argument(
        "--warm", type=float, default=5, help="seconds after a step's users start, not counted"
    )
    parser.add_argument("--step-seconds", type=float, default=15, help="seconds counted per step")
    parser.add_argument("--p95-ms", type=float, default=200)
    args = parser.parse_args()
    os.environ["LOAD_PLAN"] = str(args.plan)
    sys.path.insert(0, str(ROOT))
    from bench import locustfile

    plan = locustfile.PLAN
    env = Environment(
        user_classes=[locustfile.Guest, locustfile.Customer, locustfile.Admin],
        host=plan["host"],
        events=events,
    )
    stepper = Stepper(env, args, locustfile.Admin.fixed_count)
    try:
        stepper.run()
    finally:
        result = {
            "steps": stepper.steps,
            "totals": dict(stepper.totals),
            "failed": dict(stepper.failed),
            "socket_events": dict(locustfile.SOCKET_EVENTS),
            "admins": locustfile.Admin.fixed_count,
            "settings": {k: v for k, v in vars(args).items() if k not in ("plan", "out")},
        }
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
