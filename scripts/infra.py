"""Make sure PostgreSQL, Redis and RabbitMQ are reachable before tests or the full stack run.

Usage:
    python scripts/infra.py ensure [--profile test|dev] [--env-file PATH]
    python scripts/infra.py status

The tests and `make up` need the real servers (DESIGN.md §8-9). This script runs
before the project's dependencies are installed, so it uses only the standard
library. For each server given by ``PG_DSN``, ``REDIS_URL`` and ``AMQP_URL`` it uses
a running one, starts an installed but stopped one, installs a missing one with
apt-get when run as root, and otherwise says exactly what is missing. Remote hosts
are only checked. ``--profile test`` also gives the tests their own RabbitMQ vhost
and writes the URLs to an env file that ``make test`` sources.
"""

from __future__ import annotations

import argparse
import os
import pwd
import resource
import shlex
import shutil
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URLS = {
    "PG_DSN": "postgresql://postgres@127.0.0.1:5432",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "AMQP_URL": "amqp://guest:guest@127.0.0.1:5672/",
}
ENV_FILES = {"test": ".test-infra.env", "dev": ".infra.env"}
TEST_VHOST = "shop_test"
LOCAL_HOSTS = {"", "localhost", "127.0.0.1", "::1"}
PG_CONF_DIR = Path("/etc/postgresql")
REDIS_DIR = Path("/var/lib/redis")
COMPOSE_HINT = "docker compose up -d postgres redis rabbitmq"


@dataclass(frozen=True)
class Server:
    name: str
    url: str
    binary: str  # the executable whose presence means "installed"
    package: str  # the Debian package that provides it
    default_port: int
    wait_seconds: float

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or self.default_port

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def is_local(self) -> bool:
        return self.host in LOCAL_HOSTS

    @property
    def uses_tls(self) -> bool:
        return urlsplit(self.url).scheme in {"rediss", "amqps"}


def servers_from_env() -> list[Server]:
    url = {key: os.environ.get(key) or default for key, default in DEFAULT_URLS.items()}
    return [
        Server("postgres", url["PG_DSN"], "pg_ctlcluster", "postgresql", 5432, 30),
        Server("redis", url["REDIS_URL"], "redis-server", "redis-server", 6379, 30),
        Server("rabbitmq", url["AMQP_URL"], "rabbitmq-server", "rabbitmq-server", 5672, 60),
    ]


def which(binary: str) -> str | None:
    # rabbitmq-server and rabbitmqctl live in sbin, which a non-root PATH usually lacks
    return shutil.which(binary, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


def run(
    args: list[str],
    timeout: float = 120,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    preexec_fn: Callable[[], None] | None = None,
) -> subprocess.CompletedProcess[str]:
    # the commands are this script's own fixed lists, never shell strings; no stdin so CI never blocks
    return subprocess.run(
        args,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
        cwd=cwd,
        preexec_fn=preexec_fn,
    )


# ---- reachability: TCP plus one real exchange of the server's protocol ----


def connect(server: Server, timeout: float = 3) -> socket.socket:
    sock = socket.create_connection((server.host, server.port), timeout=timeout)
    if server.uses_tls:
        return ssl.create_default_context().wrap_socket(sock, server_hostname=server.host)
    return sock


def postgres_answers(server: Server) -> bool:
    parts = urlsplit(server.url)
    args = [
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        unquote(parts.username or "postgres"),
        "-d",
        "postgres",
    ]
    if pg_isready := which("pg_isready"):
        return run([pg_isready, *args, "-t", "3", "-q"], timeout=10).returncode == 0
    if psql := which("psql"):
        env = {**os.environ, "PGCONNECT_TIMEOUT": "3", "PGPASSWORD": unquote(parts.password or "")}
        return run([psql, *args, "-w", "-Atqc", "SELECT 1"], timeout=10, env=env).returncode == 0
    # no client tools at all: an SSLRequest gets a one-byte 'S' or 'N' from any PostgreSQL
    with connect(server) as sock:
        sock.sendall((8).to_bytes(4, "big") + (80877103).to_bytes(4, "big"))
        return sock.recv(1) in {b"S", b"N"}


def resp(*words: str) -> bytes:
    encoded = [word.encode() for word in words]
    return f"*{len(encoded)}\r\n".encode() + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in encoded)


def redis_answers(server: Server) -> bool:
    parts = urlsplit(server.url)
    with connect(server) as sock:
        if parts.password:
            user = [unquote(parts.username)] if parts.username else []
            sock.sendall(resp("AUTH", *user, unquote(parts.password)))
            if not sock.recv(64).startswith(b"+OK"):
                return False
        sock.sendall(b"PING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def amqp_answers(server: Server) -> bool:
    with connect(server) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        return len(sock.recv(8)) > 0


PROBES = {"postgres": postgres_answers, "redis": redis_answers, "rabbitmq": amqp_answers}


def reachable(server: Server) -> bool:
    try:
        return PROBES[server.name](server)
    except (OSError, subprocess.SubprocessError):
        return False


def wait_until_reachable(server: Server) -> bool:
    deadline = time.monotonic() + server.wait_seconds
    while time.monotonic() < deadline:
        if reachable(server):
            return True
        time.sleep(0.5)
    return reachable(server)


# ---- installing and starting local servers ----


def postgres_version() -> str | None:
    """The newest PostgreSQL version with a ``main`` cluster under /etc/postgresql."""
    if not PG_CONF_DIR.is_dir():
        return None
    versions = [d.name for d in PG_CONF_DIR.iterdir() if (d / "main").is_dir()]
    return max(versions, key=lambda v: [int(p) if p.isdigit() else 0 for p in v.split(".")], default=None)


def installed(server: Server) -> bool:
    if server.name == "postgres":
        return which(server.binary) is not None and postgres_version() is not None
    return which(server.binary) is not None


def start_command(server: Server) -> list[str]:
    if server.name == "postgres":
        return ["pg_ctlcluster", "--skip-systemctl-redirect", str(postgres_version()), "main", "start"]
    if server.name == "redis":
        command = [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            str(server.port),
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        return [*command, "--dir", str(REDIS_DIR)] if REDIS_DIR.is_dir() else command
    return ["rabbitmq-server", "-detached"]


def as_broker_user() -> None:
    """In the child: the broker's own user with as many open files as this machine allows.

    Debian's rabbitmq-server switches to that user through su, whose PAM session sets the soft
    limit back to 1,024; started as the user already, it keeps what it inherits."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    user = pwd.getpwnam("rabbitmq")
    os.setgroups([])
    os.setgid(user.pw_gid)
    os.setuid(user.pw_uid)


def broker_home() -> Path | None:
    """The home of Debian's rabbitmq user, when there is one."""
    try:
        home = Path(pwd.getpwnam("rabbitmq").pw_dir)
    except KeyError:
        return None
    return home if home.is_dir() else None


def start(server: Server) -> str | None:
    """Start the server; the error to report if the command itself failed."""
    command = start_command(server)
    executable = which(command[0])
    if executable is None:
        return f"{command[0]} not found"
    try:
        if server.name == "rabbitmq" and os.geteuid() == 0 and broker_home() is not None:
            home = str(broker_home())
            env = {**os.environ, "HOME": home}
            result = run([executable, *command[1:]], env=env, cwd=home, preexec_fn=as_broker_user)
        else:
            result = run([executable, *command[1:]])
    except subprocess.TimeoutExpired:
        return f"`{shlex.join(command)}` did not return"
    if result.returncode != 0:
        return f"`{shlex.join(command)}` failed: {(result.stderr or result.stdout).strip()[-300:]}"
    return None


def can_install() -> bool:
    return os.geteuid() == 0 and which("apt-get") is not None


def apt_install(servers: list[Server]) -> str | None:
    """Install the servers' packages; the error to report if apt-get failed."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    packages = [server.package for server in servers]
    for args in (["apt-get", "update"], ["apt-get", "install", "-y", *packages]):
        print(f"infra: {shlex.join(args)}", flush=True)
        result = run(args, timeout=900, env=env)
        if result.returncode != 0:
            return f"`{shlex.join(args)}` failed: {result.stderr.strip()[-500:]}"
    return None


def trust_local_postgres(server: Server) -> None:
    """Let the ``postgres`` role in over 127.0.0.1 and the socket without a password, as PG_DSN assumes.

    Only for a cluster this script just installed: an existing cluster's auth is its owner's choice.
    """
    version = postgres_version()
    hba = PG_CONF_DIR / str(version) / "main" / "pg_hba.conf"
    trust = "host all all 127.0.0.1/32 trust\nlocal all all trust\n"
    text = hba.read_text()
    if not text.startswith(trust):
        hba.write_text(trust + text)
    if reachable(server):  # the package's postinst may already have started it
        run(["pg_ctlcluster", "--skip-systemctl-redirect", str(version), "main", "reload"])


# ---- commands ----


def missing_hint(server: Server) -> str:
    return (
        f"{server.name}: not reachable at {server.address} and {server.binary} is not installed; "
        f"install it with `sudo apt-get install -y {server.package}` or run `{COMPOSE_HINT}`"
    )


def ensure_all(servers: list[Server]) -> list[str]:
    """Bring every server up where this machine can; the problems left, one line each."""
    problems: list[str] = []
    down = [server for server in servers if not reachable(server)]
    for server in servers:
        if server not in down:
            print(f"{server.name}: reachable at {server.address} (already running)")
    for server in down:
        if not server.is_local:
            problems.append(
                f"{server.name}: not reachable at {server.address} (remote host: not managed here)"
            )
    local_down = [server for server in down if server.is_local]
    missing = [server for server in local_down if not installed(server)]
    if missing and not can_install():
        problems += [missing_hint(server) for server in missing]
        local_down = [server for server in local_down if server not in missing]
    elif missing:
        if error := apt_install(missing):
            return [*problems, f"infra: {error}"]
        if any(server.name == "postgres" for server in missing):
            trust_local_postgres(next(server for server in missing if server.name == "postgres"))

    started = []  # start all before waiting on any, so their start-up times overlap
    for server in local_down:
        error = None if reachable(server) else start(server)
        if error:
            problems.append(f"{server.name}: not reachable at {server.address}; {error}")
        else:
            started.append(server)
    for server in started:
        how = "installed and started" if server in missing else "started"
        if wait_until_reachable(server):
            print(f"{server.name}: reachable at {server.address} ({how})")
        else:
            problems.append(
                f"{server.name}: {how} but still not reachable at {server.address} after "
                f"{server.wait_seconds:.0f} s; see its log"
            )
    return problems


def test_amqp_url(amqp_url: str) -> str:
    """The AMQP URL on the tests' own vhost, or the given URL when the vhost can't be made here."""
    parts = urlsplit(amqp_url)
    rabbitmqctl = which("rabbitmqctl")
    if rabbitmqctl is None or (parts.hostname or "") not in LOCAL_HOSTS:
        return amqp_url
    user = unquote(parts.username or "guest")
    for args in (["add_vhost", TEST_VHOST], ["set_permissions", "-p", TEST_VHOST, user, ".*", ".*", ".*"]):
        result = run([rabbitmqctl, "-q", *args], timeout=60)
        if result.returncode != 0 and "already exists" not in result.stderr + result.stdout:
            reason = next((line.strip() for line in result.stderr.splitlines() if line.strip()), "no output")
            print(
                f"rabbitmq: could not prepare vhost {TEST_VHOST} ({reason}); tests use the URL's vhost",
                file=sys.stderr,
            )
            return amqp_url
    return urlunsplit(parts._replace(path="/" + quote(TEST_VHOST, safe="")))


# the test suite runs several whole stacks (every part its own process, each with a small pool)
# beside in-process service apps: PostgreSQL's default of 100 connections is too tight for that
TEST_PG_CONNECTIONS = 300


def ensure_postgres_capacity(server: Server) -> None:
    """Raise a local Debian cluster's max_connections for the test profile (a restart), when we may."""
    psql = which("psql")
    version = postgres_version()
    if psql is None or version is None or not server.is_local or not can_install():
        return
    parts = urlsplit(server.url)
    args = [
        psql,
        "-h",
        server.host,
        "-p",
        str(server.port),
        "-U",
        unquote(parts.username or "postgres"),
        "-d",
        "postgres",
        "-w",
        "-Atqc",
    ]
    shown = run([*args, "SHOW max_connections"], timeout=10)
    if shown.returncode != 0 or not shown.stdout.strip().isdigit():
        return
    if int(shown.stdout.strip()) >= TEST_PG_CONNECTIONS:
        return
    if run([*args, f"ALTER SYSTEM SET max_connections = {TEST_PG_CONNECTIONS}"], timeout=10).returncode != 0:
        return
    run(["pg_ctlcluster", "--skip-systemctl-redirect", str(version), "main", "restart"], timeout=120)
    if wait_until_reachable(server):
        print(f"postgres: max_connections raised to {TEST_PG_CONNECTIONS} for the test suite (restarted)")
    else:
        print(
            "postgres: restarted to raise max_connections but not reachable again; see its log",
            file=sys.stderr,
        )


# Each whole-system stack holds a connection per part and replica, and the suite runs several
# stacks beside its in-process apps: a broker left at the usual 1,024 open files runs out
# ("Ranch acceptor reducing accept rate: out of file descriptors") and connections time out.
TEST_RABBITMQ_FILES = 8192
UNLIMITED = 1 << 62


def rabbitmq_open_files() -> tuple[int, str] | None:
    """The local broker node's limit of open files and its OS pid, when rabbitmqctl can tell."""
    rabbitmqctl = which("rabbitmqctl")
    if rabbitmqctl is None:
        return None
    result = run([rabbitmqctl, "-q", "eval", "os:getpid()."], timeout=30)
    pid = result.stdout.strip().strip('"')
    if result.returncode != 0 or not pid.isdigit():
        return None
    try:
        limits = Path(f"/proc/{pid}/limits").read_text()
    except OSError:
        return None
    line = next((line for line in limits.splitlines() if line.startswith("Max open files")), "")
    soft = line.split()[3] if len(line.split()) > 3 else ""
    if soft == "unlimited":
        return UNLIMITED, pid
    return (int(soft), pid) if soft.isdigit() else None


def ensure_rabbitmq_capacity(server: Server) -> None:
    """Restart a local broker that may open too few files for the suite, with the limit raised."""
    if not server.is_local or not can_install():
        return
    found = rabbitmq_open_files()
    _, can_give = resource.getrlimit(resource.RLIMIT_NOFILE)
    can_give = UNLIMITED if can_give == resource.RLIM_INFINITY else can_give
    if found is None or found[0] >= TEST_RABBITMQ_FILES or found[0] >= can_give or broker_home() is None:
        return
    rabbitmqctl = which("rabbitmqctl")
    assert rabbitmqctl is not None
    run([rabbitmqctl, "-q", "stop"], timeout=120)
    error = start(server)
    if error is None and wait_until_reachable(server):
        print(
            f"rabbitmq: open files raised from {found[0]} to "
            f"{(rabbitmq_open_files() or (0, ''))[0]} for the test suite (restarted)"
        )
    else:
        print(
            f"rabbitmq: restarted to raise its open files but not reachable again; {error or 'see its log'}",
            file=sys.stderr,
        )


def write_env_file(path: Path, values: dict[str, str]) -> None:
    # shell-quoted so that `set -a; . ./file; set +a` reads the URLs back unchanged
    path.write_text("".join(f"{key}={shlex.quote(value)}\n" for key, value in values.items()))
    print(f"infra: wrote {path}")


def status(servers: list[Server]) -> int:
    up = True
    for server in servers:
        if reachable(server):
            print(f"{server.name}: reachable at {server.address} (running)")
        else:
            up = False
            state = (
                "installed, stopped"
                if server.is_local and installed(server)
                else ("not installed" if server.is_local else "remote host")
            )
            print(f"{server.name}: NOT reachable at {server.address} ({state})")
    return 0 if up else 1


def ensure(servers: list[Server], profile: str | None, env_file: str | None) -> int:
    problems = ensure_all(servers)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    values = {key: server.url for key, server in zip(DEFAULT_URLS, servers, strict=True)}
    if profile == "test":
        ensure_rabbitmq_capacity(next(server for server in servers if server.name == "rabbitmq"))
        values["AMQP_URL"] = test_amqp_url(values["AMQP_URL"])
        ensure_postgres_capacity(next(server for server in servers if server.name == "postgres"))
    if env_file or profile:
        write_env_file(Path(env_file) if env_file else ROOT / ENV_FILES[str(profile)], values)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Make sure PostgreSQL, Redis and RabbitMQ are reachable.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="check the servers without acting")
    ensure_parser = commands.add_parser("ensure", help="use, start or install the servers")
    ensure_parser.add_argument("--profile", choices=sorted(ENV_FILES), help="write the URLs for this use")
    ensure_parser.add_argument("--env-file", help="where to write the URLs (default by profile)")
    args = parser.parse_args(argv)
    servers = servers_from_env()
    if args.command == "status":
        return status(servers)
    return ensure(servers, args.profile, args.env_file)


if __name__ == "__main__":
    sys.exit(main())
