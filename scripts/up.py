"""``make up``: the full stack, every part its own process, against real PostgreSQL/Redis/RabbitMQ.

Steps: make sure the servers run (``scripts/infra.py ensure --profile dev``), apply every
service's migrations, seed an empty catalog, create the admin named by ADMIN_EMAIL /
ADMIN_PASSWORD, then run the Procfile with honcho: one log stream prefixed by part, and
one Ctrl-C stops every part. Configuration: the environment, then ``.env``, then the
URLs infra.py wrote to ``.infra.env``.

Usage: python scripts/up.py [--skip-infra] [--seed-products N] [--only auth catalog ...]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROCFILE = ROOT / "Procfile"
# parts whose database schema `python -m <module> migrate` manages (gateway and realtime own none)
MIGRATED = ("auth", "catalog", "cart", "orders", "payments")


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines of a dotenv file; comments and blank lines ignored."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def base_env() -> dict[str, str]:
    """The real environment over ``.env``; ``python`` on PATH is this interpreter (the Procfile says python)."""
    env = {**read_env_file(ROOT / ".env"), **os.environ}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    # each part has its own port (Procfile); a PORT inherited from the shell would put them all on one
    env.pop("PORT", None)
    return env


def procfile_parts() -> OrderedDict[str, str]:
    """Procfile name -> command, in file order."""
    parts: OrderedDict[str, str] = OrderedDict()
    for line in PROCFILE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#") and ":" in line:
            name, _, command = line.partition(":")
            parts[name.strip()] = command.strip()
    return parts


def module_of(command: str) -> str:
    """``PORT=8001 python -m services.auth`` -> ``services.auth``."""
    words = command.split()
    return words[words.index("-m") + 1]


def run_step(title: str, args: list[str], env: dict[str, str]) -> None:
    print(f"up: {title}", flush=True)
    result = subprocess.run(args, cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        raise SystemExit(f"up: {title} failed (exit {result.returncode})")


def migrate_all(parts: OrderedDict[str, str], env: dict[str, str]) -> None:
    """Every service's migrations, side by side (each touches only its own database)."""
    procs = {name: subprocess.Popen([sys.executable, "-m", module_of(cmd), "migrate"], cwd=ROOT, env=env)
             for name, cmd in parts.items() if name in MIGRATED}
    failed = [name for name, p in procs.items() if p.wait() != 0]
    if failed:
        raise SystemExit(f"up: migrations failed for {', '.join(failed)}")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python scripts/up.py", description=__doc__.splitlines()[0])
    parser.add_argument("--skip-infra", action="store_true", help="do not run scripts/infra.py ensure")
    parser.add_argument("--seed-products", type=int, default=200, help="demo products for an empty catalog (0: none)")
    parser.add_argument("--only", nargs="+", help="run only these Procfile entries")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = base_env()
    if not args.skip_infra:
        run_step("checking PostgreSQL, Redis and RabbitMQ (scripts/infra.py ensure --profile dev)",
                 [sys.executable, str(ROOT / "scripts" / "infra.py"), "ensure", "--profile", "dev"], env)
        for key, value in read_env_file(ROOT / ".infra.env").items():
            env.setdefault(key, value)
    parts = procfile_parts()
    if args.only:
        unknown = set(args.only) - set(parts)
        if unknown:
            raise SystemExit(f"up: not in the Procfile: {', '.join(sorted(unknown))}")
        parts = OrderedDict((n, c) for n, c in parts.items() if n in args.only)
    migrate_all(parts, env)
    if "catalog" in parts and args.seed_products > 0:
        # leaves a catalog that has products alone; --events tells the cart and live clients about them
        run_step("seeding the demo catalog if it is empty",
                 [sys.executable, "-m", "services.catalog", "seed", "--products", str(args.seed_products),
                  "--events"], env)
    if "auth" in parts and env.get("ADMIN_EMAIL") and env.get("ADMIN_PASSWORD"):
        run_step(f"admin account {env['ADMIN_EMAIL']}",
                 [sys.executable, "-m", "services.auth", "create-admin", "--email", env["ADMIN_EMAIL"],
                  "--password", env["ADMIN_PASSWORD"]], env)
    elif "auth" in parts:
        print("up: no ADMIN_EMAIL/ADMIN_PASSWORD: no admin account made "
              "(later: python -m services.auth create-admin --email E --password P)", flush=True)
    return run_honcho(parts, env)


def run_honcho(parts: OrderedDict[str, str], env: dict[str, str]) -> int:
    """Start every part under one honcho manager: prefixed logs, one Ctrl-C stops all."""
    from honcho.manager import Manager
    from honcho.printer import Printer

    gateway = "http://127.0.0.1:8000"
    print(f"up: starting {', '.join(parts)}\n"
          f"up: gateway {gateway}  docs {gateway}/docs  console {gateway}/console/  (Ctrl-C stops all)",
          flush=True)
    # honcho's own `start` would set PORT=5000, 5100... per line; the manager API leaves ports to the Procfile
    manager = Manager(Printer(sys.stdout, colour=sys.stdout.isatty(), prefix=True))
    for name, command in parts.items():
        manager.add_process(name, command, env={**env, "HONCHO_PROCESS_NAME": name}, cwd=str(ROOT))
    manager.loop()
    rc = int(manager.returncode or 0)
    # Ctrl-C / SIGTERM (honcho's 130/143) is how the user stops it: a clean stop, not a failure
    return 0 if rc in (130, 143) else rc


if __name__ == "__main__":
    sys.exit(main())
