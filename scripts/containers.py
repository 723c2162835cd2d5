"""A Docker engine, a compose client and a base image, on a machine that may have none of them.

Usage:
    python scripts/containers.py env            # prints `export` lines that make e2e-compose evaluates
    python scripts/containers.py wait PROJECT   # until every container of a compose project is healthy

``make e2e-compose`` runs the whole shop in containers. This gets it what it needs, in
order, and says what it did:

- the engine: a running one is used; as root, Debian's ``docker.io`` is installed when
  missing and ``dockerd`` started when stopped (its log goes to ``.data/dockerd.log``);
- a compose client: Compose v2 (``docker compose``) when the engine's CLI has it,
  otherwise Debian's ``docker-compose`` (1.29, the v1 client: the only one its packages
  carry), installed as root when missing. docker-compose.yml uses only what both read;
- the base image every container is built from (``SHOP_BASE_IMAGE``): Debian bookworm,
  pulled when a registry answers, otherwise made here with debootstrap from the Debian
  mirror apt already uses and imported with ``docker import``. Python comes from Debian
  inside it (the same 3.11 the project supports, with Debian's security updates),
  PostgreSQL, Redis and RabbitMQ too, so the images need nothing but a Debian mirror.

Standard library only: it runs before the project's dependencies exist.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PULLED_BASE = "debian:bookworm-slim"
LOCAL_BASE = "shop-debian:bookworm"
SUITE = "bookworm"
# the docker CLI to drive (a stand-in in tests/runmodes); another than the default is never installed
DOCKER = os.environ.get("DOCKER") or "docker"


def say(message: str) -> None:
    print(f"containers: {message}", file=sys.stderr, flush=True)


def run(*cmd: str, timeout: float = 600, quiet: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=quiet, text=True, timeout=timeout, check=False)


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def apt_install(*packages: str) -> None:
    if not is_root():
        raise SystemExit(
            f"containers: {' '.join(packages)} missing; install them (Debian: apt-get install "
            f"{' '.join(packages)}) or run as root"
        )
    say(f"installing {' '.join(packages)} (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=False, env=env, stdout=subprocess.DEVNULL)
    result = subprocess.run(
        ["apt-get", "install", "-y", "-q", *packages], check=False, env=env, stdout=subprocess.DEVNULL
    )
    if result.returncode != 0:
        raise SystemExit(f"containers: apt-get install {' '.join(packages)} failed")


def engine_answers() -> bool:
    return shutil.which(DOCKER) is not None and run(DOCKER, "info", timeout=30).returncode == 0


def ensure_engine() -> None:
    if engine_answers():
        return
    if DOCKER != "docker":
        raise SystemExit(
            f"containers: no Docker engine answers ('{DOCKER} info' failed). Start one, or run the "
            "suite against any running stack: SHOP_GATEWAY_URL=http://host:8000 python -m pytest "
            "tests/e2e (see tests/e2e/external.py)"
        )
    if shutil.which("dockerd") is None:
        apt_install("docker.io")
    if not engine_answers():
        if not is_root():
            raise SystemExit("containers: no Docker engine answers and only root can start one here")
        log = ROOT / ".data" / "dockerd.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"starting dockerd (log: {log.relative_to(ROOT)})")
        with log.open("ab") as out:
            subprocess.Popen(["dockerd"], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while not engine_answers():
            if time.monotonic() > deadline:
                raise SystemExit(f"containers: dockerd did not answer within 60 s; see {log}")
            time.sleep(1)
    say("Docker engine ready")


def compose_command() -> str:
    if os.environ.get("SHOP_COMPOSE_CMD"):
        return os.environ["SHOP_COMPOSE_CMD"]
    if run(DOCKER, "compose", "version", timeout=30).returncode == 0:
        return f"{DOCKER} compose"
    if shutil.which("docker-compose") is None:
        apt_install("docker-compose")
    return "docker-compose"


def image_exists(name: str) -> bool:
    return run(DOCKER, "image", "inspect", name, timeout=30).returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt is set up with (deb822 sources or the classic list)."""
    for path in sorted(Path("/etc/apt/sources.list.d").glob("*.sources")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    classic = Path("/etc/apt/sources.list")
    if classic.exists():
        for line in classic.read_text(encoding="utf-8").splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[0] == "deb" and "security" not in parts[1]:
                return parts[1] if not parts[1].startswith("[") else parts[2]
    raise SystemExit(
        "containers: no Debian mirror found in /etc/apt; set SHOP_BASE_IMAGE to an image you have"
    )


def build_local_base() -> str:
    """Debian bookworm (minbase) made with debootstrap and imported as an image."""
    if shutil.which("debootstrap") is None:
        apt_install("debootstrap")
    mirror = debian_mirror()
    with tempfile.TemporaryDirectory(prefix="shop-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        say(f"no base image can be pulled: making {LOCAL_BASE} with debootstrap ({SUITE}, minbase)")
        started = time.monotonic()
        result = run(
            "debootstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            SUITE,
            str(rootfs),
            mirror,
            timeout=1800,
        )
        if result.returncode != 0:
            raise SystemExit(
                f"containers: debootstrap failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        # the image trusts what this machine trusts: a host behind an inspecting proxy adds its
        # authority there, and pip and npm inside the builds go through the same proxy
        extra = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        if extra:
            for crt in extra:
                shutil.copy(crt, rootfs / "usr/local/share/ca-certificates" / crt.name)
            run("chroot", str(rootfs), "update-ca-certificates")
        # what docker images of Debian leave out: caches and logs of the bootstrap itself
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        imported = subprocess.run(
            [DOCKER, "import", "--change", 'CMD ["bash"]', "-", LOCAL_BASE],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            check=False,
        )
        tar.wait()
        if imported.returncode != 0:
            raise SystemExit(f"containers: docker import failed: {imported.stderr}")
        say(f"{LOCAL_BASE} made in {time.monotonic() - started:.0f} s")
    return LOCAL_BASE


def base_image() -> str:
    wanted = os.environ.get("SHOP_BASE_IMAGE")
    if wanted:
        return wanted
    for name in (PULLED_BASE, LOCAL_BASE):
        if image_exists(name):
            return name
    if run(DOCKER, "pull", PULLED_BASE, timeout=120).returncode == 0:
        return PULLED_BASE
    return build_local_base()


def wait_healthy(project: str, timeout: float) -> int:
    """Compose v2's ``up --wait`` for both clients: every container healthy, one-shots exited 0."""
    deadline = time.monotonic() + timeout
    while True:
        listed = run(
            DOCKER,
            "ps",
            "-a",
            "--filter",
            f"label=com.docker.compose.project={project}",
            "--format",
            "{{.Names}}\t{{.State}}\t{{.Status}}",
            timeout=30,
        ).stdout.splitlines()
        waiting, failed = [], []
        for line in listed:
            name, state, status = ([*line.split("\t"), "", ""])[:3]
            if state == "exited" and not status.startswith("Exited (0)"):
                failed.append(f"{name} ({status})")
            elif state == "running" and "(healthy)" not in status and "health" in status:
                waiting.append(name)
            elif state not in ("running", "exited"):
                waiting.append(name)
        if failed:
            say(f"stopped with an error: {', '.join(failed)}")
            return 1
        if not listed:
            say(f"no container of {project} exists: did `up` fail?")
            return 1
        if not waiting:
            say(f"{len(listed)} containers of {project} are up")
            return 0
        if time.monotonic() > deadline:
            say(f"not healthy after {timeout:.0f} s: {', '.join(waiting) or 'no containers'}")
            return 1
        time.sleep(2)


def free_port() -> int:
    """A loopback port free now, below the kernel's ephemeral range: a port picked by binding to 0
    comes from that range, where any outgoing connection may take it before the engine publishes
    it (a build of many minutes lies between the two)."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise SystemExit("containers: no free loopback port between 20000 and 32000")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("command", choices=["env", "wait", "free-port"])
    parser.add_argument("project", nargs="?", default="shop")
    parser.add_argument("--timeout", type=float, default=300)
    args = parser.parse_args(argv)
    if args.command == "wait":
        return wait_healthy(args.project, args.timeout)
    if args.command == "free-port":
        print(free_port())
        return 0
    ensure_engine()
    compose = compose_command()
    base = base_image()
    say(f"compose client: {compose}; base image: {base}")
    print(f"export SHOP_COMPOSE_CMD='{compose}' SHOP_BASE_IMAGE='{base}'")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
