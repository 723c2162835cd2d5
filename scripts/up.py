"""``make up``: the full stack, every part its own process, against real PostgreSQL/Redis/RabbitMQ.

Steps: make sure the servers run (``scripts/infra.py ensure --profile dev``), apply every
service's migrations, seed an empty catalog and pricing, create the admin named by
ADMIN_EMAIL / ADMIN_PASSWORD (all side by side, each in its own database), then run every
part of the registry (libs/common/parts.py) as ``python -m <module>`` on its port: one log
stream prefixed by part, one Ctrl-C stops all.

A part that dies (a crash, an out-of-memory kill) is started again after a back-off that
doubles from 1 s to 30 s while it keeps dying young, and the log says so: one part going
down must not take the shop with it, as it did when honcho stopped every part at the
first exit. Configuration: the environment, then ``.env``, then the URLs infra.py wrote
to ``.infra.env``. Product images go to S3 when MEDIA_S3_ENDPOINT is set, else to .data/media,
served through the gateway (``media_storage``).

``--replicas N`` (``make up REPLICAS=N``) runs N processes of every service, replica k
(from 0) on its usual port + 1000·k, each named ``<part>.<k+1>`` in the log; every part is
told every replica of the others (``<PART>_URL`` as a comma-separated list) and spreads its
calls over them (libs/common/replicas.py). The gateway stays one process: it is the one
address clients use, and on one machine nothing stands in front of it to spread over two
(in Kubernetes a Service does, and the gateway scales like the rest).

Usage: python scripts/up.py [--skip-infra] [--seed-products N] [--only auth catalog ...] [--port-offset N] [--replicas N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the registry is imported from this checkout

from libs.common.parts import BY_NAME, GATEWAY, PARTS, Part  # noqa: E402

FIRST_BACKOFF = 1.0  # seconds before the first restart of a part that died
MAX_BACKOFF = 30.0
STABLE_AFTER = 30.0  # a part that ran this long before dying starts again after FIRST_BACKOFF
STOP_GRACE = 10.0  # seconds a part has to stop after SIGTERM before it is killed
REPLICA_PORT_STEP = 1000  # replica k of a part listens on its port + k * this


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a dotenv file (none when it is missing)."""
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def base_env() -> dict[str, str]:
    """The real environment over ``.env``; ``python`` on PATH is this interpreter."""
    env = {**read_env_file(ROOT / ".env"), **os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    # each part has its own port; a PORT inherited from the shell would put them all on one
    env.pop("PORT", None)
    # every part shares one credential, and not the published dev default: from that any local
    # process could forge the gateway's X-Forwarded-Proof (libs/common/forwarding.py)
    env.setdefault("INTERNAL_API_TOKEN", secrets.token_urlsafe(32))
    # webhooks may target receivers on this machine or its network (refused in production)
    env.setdefault("WEBHOOK_ALLOW_PRIVATE", "true")
    return env


@dataclass(frozen=True)
class Instance:
    """One process of a part: replica ``index`` of ``replicas``."""

    part: Part
    index: int = 0
    replicas: int = 1

    @property
    def name(self) -> str:
        return self.part.name if self.replicas == 1 else f"{self.part.name}.{self.index + 1}"

    def port(self, offset: int) -> int:
        return self.part.port + offset + self.index * REPLICA_PORT_STEP


def replica_count(part: Part, replicas: int) -> int:
    """How many processes of ``part`` run: the gateway is always one (see the module's docstring)."""
    return 1 if part is GATEWAY else replicas


def instances(parts: list[Part], replicas: int) -> list[Instance]:
    count = {p.name: replica_count(p, replicas) for p in parts}
    return [Instance(p, i, count[p.name]) for p in parts for i in range(count[p.name])]


def part_urls(part: Part, offset: int, replicas: int) -> str:
    """Where the others reach ``part``: every replica's URL, comma-separated."""
    n = replica_count(part, replicas)
    return ",".join(f"http://127.0.0.1:{Instance(part, i, n).port(offset)}" for i in range(n))


def part_env(
    instance: Instance | Part, env: dict[str, str], offset: int, replicas: int = 1
) -> dict[str, str]:
    """What one process is started with: its port, and where the others are (shifted by ``offset``)."""
    if isinstance(instance, Part):
        instance = Instance(instance)
    out = {**env, "PORT": str(instance.port(offset))}
    if offset or replicas > 1:
        for p in PARTS:
            out[p.url_env] = part_urls(p, offset, replicas)
        out["JWKS_URL"] = f"http://127.0.0.1:{BY_NAME['auth'].port + offset}/.well-known/jwks.json"
    return out


def run_step(title: str, args: list[str], env: dict[str, str]) -> None:
    print(f"up: {title}", flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"up: {title} failed (exit {result.returncode})")


@dataclass(frozen=True)
class Step:
    """A one-off command before the parts start: a migration, or a seed (which migrates first)."""

    what: str
    args: list[str]
    announce: bool = True


def run_steps(steps: list[Step], env: dict[str, str]) -> None:
    """The steps side by side (each touches only its own database); any failure stops ``make up``."""
    procs = []
    for step in steps:
        if step.announce:
            print(f"up: {step.what}", flush=True)
        procs.append((step, subprocess.Popen(step.args, cwd=ROOT, env=env)))
    failed = [f"{step.what} (exit {rc})" for step, proc in procs if (rc := proc.wait()) != 0]
    if failed:
        raise SystemExit(f"up: failed: {'; '.join(failed)}")


def describe_exit(rc: int) -> str:
    if rc < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-rc).name}"
    return f"exit {rc}"


@dataclass
class Supervisor:
    """Runs parts, prints their lines prefixed by name, and starts a dead one again after a back-off."""

    parts: list[Part]
    env: dict[str, str]
    offset: int = 0
    replicas: int = 1

    def __post_init__(self) -> None:
        self.stopping = asyncio.Event()
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self.instances = instances(self.parts, self.replicas)
        self.width = max(len(i.name) for i in self.instances) if self.instances else 2

    def say(self, name: str, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {name:<{self.width}} | {line}", flush=True)

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        runners = [asyncio.create_task(self.keep_running(i), name=f"run-{i.name}") for i in self.instances]
        await self.stopping.wait()
        print("up: stopping every part...", flush=True)
        for proc in self.procs.values():
            if proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.terminate()
        await asyncio.gather(*runners, return_exceptions=True)
        return 0

    async def keep_running(self, instance: Instance) -> None:
        part, name = instance.part, instance.name
        backoff, restarts = FIRST_BACKOFF, 0
        while not self.stopping.is_set():
            started = time.monotonic()
            # its own session: Ctrl-C at the terminal reaches this supervisor only, which stops every part in turn
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                part.module,
                cwd=ROOT,
                env=part_env(instance, self.env, self.offset, self.replicas),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )
            self.procs[name] = proc
            self.say(name, f"started (pid {proc.pid}, port {instance.port(self.offset)})")
            rc = await self.pump_until_exit(name, proc)
            if self.stopping.is_set():
                self.say(name, f"stopped ({describe_exit(rc)})")
                return
            ran = time.monotonic() - started
            if ran >= STABLE_AFTER:
                backoff = FIRST_BACKOFF
            restarts += 1
            self.say(
                name,
                f"exited ({describe_exit(rc)}) after {ran:.1f} s; "
                f"restarting in {backoff:g} s (restart {restarts})",
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stopping.wait(), backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)

    async def pump_until_exit(self, name: str, proc: asyncio.subprocess.Process) -> int:
        """Print the part's lines until it exits; once stopping, kill it if it outstays STOP_GRACE."""
        assert proc.stdout is not None
        reader = asyncio.create_task(self.pump(name, proc.stdout))
        waiter = asyncio.create_task(proc.wait())
        stop = asyncio.create_task(self.stopping.wait())
        await asyncio.wait({waiter, stop}, return_when=asyncio.FIRST_COMPLETED)
        if not waiter.done():
            try:
                await asyncio.wait_for(asyncio.shield(waiter), STOP_GRACE)
            except TimeoutError:
                self.say(name, f"still running {STOP_GRACE:g} s after SIGTERM: killed")
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        stop.cancel()
        rc = await waiter
        await reader
        return rc

    async def pump(self, name: str, stream: asyncio.StreamReader) -> None:
        while line := await stream.readline():
            self.say(name, line.decode(errors="replace").rstrip())


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python scripts/up.py", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-infra", action="store_true", help="do not run scripts/infra.py ensure")
    parser.add_argument(
        "--seed-products", type=int, default=200, help="demo products for an empty catalog (0: none)"
    )
    parser.add_argument("--only", nargs="+", choices=[p.name for p in PARTS], help="run only these parts")
    parser.add_argument(
        "--port-offset", type=int, default=0, help="added to every usual port (e.g. 20000: gateway on 28000)"
    )
    parser.add_argument(
        "--replicas",
        type=int,
        default=1,
        help="processes of every service (the gateway stays one); replica k on the usual port + 1000*k",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.replicas < 1:
        raise SystemExit("up: --replicas must be at least 1")
    env = base_env()
    if not args.skip_infra:
        run_step(
            "checking PostgreSQL, Redis and RabbitMQ (scripts/infra.py ensure --profile dev)",
            [sys.executable, str(ROOT / "scripts" / "infra.py"), "ensure", "--profile", "dev"],
            env,
        )
        for key, value in read_env_file(ROOT / ".infra.env").items():
            env.setdefault(key, value)
    parts = [p for p in PARTS if not args.only or p.name in args.only]
    names = {p.name for p in parts}
    gateway = f"http://127.0.0.1:{GATEWAY.port + args.port_offset}"
    if "catalog" in names:  # before the seed, which stores its pictures where catalog will read them
        media_storage(env, gateway)
    # every database migrated, the demo catalog, pricing's defaults and the admin made, all side by
    # side: a seed migrates its database first, so it stands in for that part's migration
    steps = {
        p.name: Step(f"migrating {p.name}", [sys.executable, "-m", p.module, "migrate"], announce=False)
        for p in parts
        if p.database
    }
    if "catalog" in names and args.seed_products > 0:
        # leaves a catalog that has products alone; --events tells the cart and live clients about them
        steps["catalog"] = Step(
            "seeding the demo catalog if it is empty",
            [
                sys.executable,
                "-m",
                BY_NAME["catalog"].module,
                "seed",
                "--products",
                str(args.seed_products),
                "--events",
            ],
        )
    if "pricing" in names:
        # a shipping zone, a tax rate and the demo coupon for a pricing with nothing configured (it prints the coupon)
        steps["pricing"] = Step(
            "seeding pricing's defaults if it is empty",
            [sys.executable, "-m", BY_NAME["pricing"].module, "seed"],
        )
    if "auth" in names and env.get("ADMIN_EMAIL") and env.get("ADMIN_PASSWORD"):
        steps["auth"] = Step(
            f"admin account {env['ADMIN_EMAIL']}",
            [
                sys.executable,
                "-m",
                BY_NAME["auth"].module,
                "create-admin",
                "--email",
                env["ADMIN_EMAIL"],
                "--password",
                env["ADMIN_PASSWORD"],
            ],
        )
    run_steps(list(steps.values()), env)
    if "auth" in names and not (env.get("ADMIN_EMAIL") and env.get("ADMIN_PASSWORD")):
        print(
            "up: no ADMIN_EMAIL/ADMIN_PASSWORD: no admin account made "
            "(later: python -m services.auth create-admin --email E --password P)",
            flush=True,
        )
    each = f" ({args.replicas} processes of each service)" if args.replicas > 1 else ""
    print(
        f"up: starting {', '.join(p.name for p in parts)}{each}\n"
        f"up: gateway {gateway}  docs {gateway}/docs  console {gateway}/console/  (Ctrl-C stops all)",
        flush=True,
    )
    with mail_catcher(env, args.port_offset):
        return asyncio.run(Supervisor(parts, env, args.port_offset, args.replicas).run())


def media_storage(env: dict[str, str], gateway: str) -> None:
    """Without MEDIA_S3_ENDPOINT, product images are kept in .data/media and served at the gateway's
    /media/, as in ``make dev``: they outlive a restart (an S3 server in memory, like the compose
    stack's, would lose them while the products naming them stay), every catalog replica on this
    machine reads the same directory, and nothing beyond the project's own dependencies is needed."""
    if env.get("MEDIA_S3_ENDPOINT"):
        print(f"up: product images in S3 at {env['MEDIA_S3_ENDPOINT']} (MEDIA_S3_ENDPOINT)", flush=True)
        return
    env.setdefault("MEDIA_LOCAL_DIR", str(ROOT / ".data" / "media"))
    env.setdefault("MEDIA_PUBLIC_URL", f"{gateway}/media")
    print(
        f"up: product images kept in {env['MEDIA_LOCAL_DIR']}, served at {env['MEDIA_PUBLIC_URL']}/",
        flush=True,
    )


@contextlib.contextmanager
def mail_catcher(env: dict[str, str], offset: int) -> Iterator[None]:
    """Without SMTP_HOST, an SMTP server that keeps every mail (tests/e2e/mailcatcher.py, the compose
    stack's too) on 1025 and its page on 8025 (+ offset); auth mails its reset codes there as well."""
    if env.get("SMTP_HOST"):
        yield
        return
    smtp, web = 1025 + offset, 8025 + offset
    catcher = str(ROOT / "tests" / "e2e" / "mailcatcher.py")
    proc = subprocess.Popen(
        [sys.executable, catcher, "--host", "127.0.0.1", "--smtp-port", str(smtp), "--http-port", str(web)],
        cwd=ROOT,
    )
    env.update(SMTP_HOST="127.0.0.1", SMTP_PORT=str(smtp))
    env.setdefault("EMAIL_BACKEND", "smtp")
    print(f"up: mail to the customers (and reset codes) kept at http://127.0.0.1:{web}/", flush=True)
    try:
        yield
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())
