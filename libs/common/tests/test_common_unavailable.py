"""Outage or bug: a dependency that is down is waited for (503 with Retry-After, events parked);
anything else is a bug (500 with its traceback logged, events dead-lettered), whatever its message says.

Outages are real: PostgreSQL, Redis and RabbitMQ reached through a TCP proxy that is cut,
and peers on ports where nothing listens. Bugs are real statements PostgreSQL refuses.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
import sqlalchemy.exc
import structlog
from fastapi import APIRouter, FastAPI, Request
from redis.asyncio import Redis

from libs.common.auth import CurrentUser, TokenVerifier
from libs.common.config import CommonSettings
from libs.common.db import Database
from libs.common.errors import GatewayTimeout, ServiceUnavailable
from libs.common.events import Envelope, EventBus
from libs.common.http import call
from libs.common.logging import configure_logging
from libs.common.service import create_service_app
from libs.common.testing import Infra, TestKeys, assert_problem, eventually, running_app, settings_for
from libs.common.testing.apps import free_port
from libs.common.testing.tcp_proxy import TcpProxy, tcp_proxy
from libs.common.unavailable import RABBITMQ, outages, quiet_library_outage_logs, unavailable_dependency

if TYPE_CHECKING:
    from collections.abc import Callable

    from common_testkit import AmqpNames

    BusFactory = Callable[..., EventBus]

MAX_ATTEMPTS = 3  # the make_bus fixture's default
# PostgreSQL refuses this statement: SQLSTATE 21000, "ON CONFLICT DO UPDATE command cannot
# affect row a second time". Its message says "cannot": it is still the statement's fault.
CONFLICT_TWICE = sa.text(
    "INSERT INTO effects (seq, event_id) VALUES (:seq, 'a'), (:seq, 'b') "
    "ON CONFLICT (seq) DO UPDATE SET event_id = excluded.event_id"
)
# SQLSTATE 23505: the second row repeats the primary key
DUPLICATE_KEY = sa.text("INSERT INTO effects (seq, event_id) VALUES (:seq, 'a'), (:seq, 'b')")
Captured = list[MutableMapping[str, Any]]  # structlog's captured lines
_seqs = itertools.count(int(time.time() * 1000) % 10**9 * 100)


def event(type_: str, **data: object) -> Envelope:
    return Envelope.new(type_, data, producer="tests")


@pytest.fixture(autouse=True)
def no_open_outage() -> Iterator[None]:
    """Every test starts (and ends) with no outage known to this process."""
    outages.clear()
    yield
    outages.clear()


@pytest.fixture
def logs() -> Iterator[Captured]:
    """Our structured log lines (info and up) written while the test runs."""
    configure_logging(service="outagetest", level="INFO", json=False)
    with structlog.testing.capture_logs() as captured:
        yield captured


def lines(captured: Captured, event_name: str, **match: Any) -> Captured:
    return [e for e in captured if e["event"] == event_name and all(e.get(k) == v for k, v in match.items())]


@pytest_asyncio.fixture
async def db_proxy(common_db: Database) -> AsyncIterator[tuple[TcpProxy, Database]]:
    """The scratch database behind a cuttable proxy."""
    async with tcp_proxy(common_db.url) as proxy:
        db = Database(proxy.url(common_db.url), pool_size=2)
        try:
            yield proxy, db
        finally:
            await db.dispose()


# --- events: a bug is dead-lettered, an outage waits --------------------------------------------


@pytest.mark.parametrize("statement", [CONFLICT_TWICE, DUPLICATE_KEY], ids=["on-conflict-twice", "unique"])
async def test_a_statement_error_is_a_bug_that_reaches_the_dead_letter_queue(
    make_bus: BusFactory, clean_db: Database, statement: sa.TextClause, logs: Captured
) -> None:
    calls = 0

    async def writes_badly(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        async with clean_db.session() as session, session.begin():
            await session.execute(statement, {"seq": next(_seqs)})

    bus = make_bus(topology={"cart": ["product.*"]})
    bus.subscribe("cart", ["product.*"], writes_badly)
    await bus.start()
    sent = event("product.updated", price=1200)
    await bus.publish(sent)

    async def dead_lettered() -> None:
        assert [d.message_id for d in await bus.dead_letters("cart")] == [str(sent.id)]

    await eventually(dead_lettered, timeout=10)
    [letter] = await bus.dead_letters("cart")
    assert letter.attempts == calls == MAX_ATTEMPTS
    assert lines(logs, "event_waits_for_dependency") == [] and lines(logs, "dependency_unavailable") == []
    [dead] = lines(logs, "event_dead_lettered")
    assert dead["log_level"] == "error" and isinstance(dead["exc_info"], sqlalchemy.exc.DBAPIError)


async def test_a_handler_that_trips_over_a_missing_file_is_a_bug_not_an_outage(
    make_bus: BusFactory, tmp_path: Path
) -> None:
    """An OSError is not a dependency being down unless it is the network's (refused, reset, unreachable)."""

    async def reads_a_missing_file(envelope: Envelope) -> None:
        (tmp_path / "missing.json").read_text()

    bus = make_bus(topology={"cart": ["product.*"]})
    bus.subscribe("cart", ["product.*"], reads_a_missing_file)
    await bus.start()
    await bus.publish(event("product.created"))

    async def dead_lettered() -> None:
        letters = await bus.dead_letters("cart")
        assert len(letters) == 1 and "FileNotFoundError" in letters[0].error, letters
        assert letters[0].attempts == MAX_ATTEMPTS

    await eventually(dead_lettered, timeout=10)


async def test_an_event_waits_while_its_database_is_cut_and_is_applied_once_after(
    make_bus: BusFactory, clean_db: Database, db_proxy: tuple[TcpProxy, Database], logs: Captured
) -> None:
    """The same handler as a bug's, but the database is away: no attempt spent, one warning, one recovery."""
    proxy, db = db_proxy
    calls = 0

    async def writes(envelope: Envelope) -> None:
        nonlocal calls
        calls += 1
        async with db.session() as session, session.begin():
            await session.execute(
                sa.text("INSERT INTO effects (event_id) VALUES (:id)"), {"id": str(envelope.id)}
            )

    bus = make_bus(topology={"cart": ["product.*"]})
    bus.subscribe("cart", ["product.*"], writes)
    await bus.start()
    await proxy.cut()
    sent = event("product.updated")
    await bus.publish(sent)

    async def waited_past_its_retries() -> None:
        assert calls > MAX_ATTEMPTS + 1

    await eventually(waited_past_its_retries, timeout=15)
    assert await bus.dead_letters("cart") == []
    await proxy.restore()

    async def applied() -> None:
        async with clean_db.session() as session:
            rows = (
                await session.execute(
                    sa.text("SELECT count(*) FROM effects WHERE event_id = :id"), {"id": str(sent.id)}
                )
            ).scalar_one()
        assert rows == 1

    await eventually(applied, timeout=15)
    assert await bus.dead_letters("cart") == []
    [warning] = lines(logs, "dependency_unavailable")
    assert warning["dependency"] == "postgresql" and warning["log_level"] == "warning"
    assert len(lines(logs, "event_waits_for_dependency", dependency="postgresql")) >= MAX_ATTEMPTS
    await eventually(lambda: _one(logs, "dependency_recovered", dependency="postgresql"), timeout=5)
    assert not [e for e in logs if e.get("exc_info") or e["log_level"] == "error"], logs


async def _one(captured: Captured, name: str, **match: Any) -> None:
    assert len(lines(captured, name, **match)) == 1, lines(captured, name)


def test_server_state_sqlstates_are_outages_and_statement_sqlstates_are_bugs() -> None:
    """Classified by SQLSTATE class, never by the words of the message."""

    class PgError(Exception):
        def __init__(self, sqlstate: str, message: str) -> None:
            super().__init__(message)
            self.sqlstate = sqlstate

    outage = {
        "08006": "connection failure",
        "57P01": "terminating connection due to administrator command",
        "57P03": "the database system is starting up",
        "53300": "sorry, too many clients already",
    }
    bugs = {
        "21000": "ON CONFLICT DO UPDATE command cannot affect row a second time",
        "23505": 'duplicate key value violates unique constraint "uq_closed_connect"',
        "42P01": 'relation "cannot_connect" does not exist',
        "57014": "canceling statement due to user request",
    }
    for state, message in outage.items():
        assert unavailable_dependency(PgError(state, message)) == "postgresql", state
    for state, message in bugs.items():
        assert unavailable_dependency(PgError(state, message)) is None, state
    assert unavailable_dependency(RuntimeError("cannot connect: connection closed")) is None
    assert unavailable_dependency(ConnectionRefusedError(111, "Connection refused")) == "network"
    assert unavailable_dependency(PermissionError(13, "Permission denied")) is None


# --- requests: a bug is a 500 with its traceback, an outage a 503 with Retry-After -----------------


def _app(infra: Infra, keys: TestKeys, router: APIRouter, **overrides: Any) -> FastAPI:
    settings = settings_for(
        CommonSettings,
        infra,
        keys,
        service_name="outagetest",
        event_bus="memory",
        log_level="INFO",
        **overrides,
    )
    return create_service_app(settings=settings, title="outage test", routers=[router])


async def test_a_statement_error_in_a_request_is_a_500_with_its_traceback_logged(
    infra: Infra, keys: TestKeys, clean_db: Database, tmp_path: Path
) -> None:
    router = APIRouter()

    @router.post("/twice")
    async def twice() -> None:
        async with clean_db.session() as session, session.begin():
            await session.execute(CONFLICT_TWICE, {"seq": next(_seqs)})

    @router.get("/settings-file")
    async def settings_file() -> str:
        return (tmp_path / "missing.toml").read_text()

    async with running_app(_app(infra, keys, router)) as client:
        with structlog.testing.capture_logs() as captured:
            twice_resp = await client.post("/twice")
            file_resp = await client.get("/settings-file")
    assert_problem(twice_resp, 500)
    assert_problem(file_resp, 500)
    assert "retry-after" not in twice_resp.headers  # nothing to wait for: it fails the same way again
    errors = lines(captured, "unhandled_error")
    assert [e["log_level"] for e in errors] == ["error", "error"]
    assert isinstance(errors[0]["exc_info"], sqlalchemy.exc.DBAPIError)
    assert isinstance(errors[1]["exc_info"], FileNotFoundError)
    assert lines(captured, "dependency_unavailable") == []


async def test_a_cut_database_is_a_503_with_retry_after_and_one_warning_then_one_recovery(
    infra: Infra, keys: TestKeys, clean_db: Database, tmp_path: Path
) -> None:
    router = APIRouter()

    @router.get("/count")
    async def count(request: Request) -> int:
        async with request.app.state.ctx.db.session() as session:
            return int((await session.execute(sa.text("SELECT count(*) FROM effects"))).scalar_one())

    migrations = tmp_path / "migrations"  # none to apply: the service owns the scratch database
    (migrations / "versions").mkdir(parents=True)
    (migrations / "env.py").write_text(
        "import sqlalchemy as sa\n\nfrom libs.common.db import run_migrations_online\n\n"
        "run_migrations_online(sa.MetaData())\n"
    )
    async with tcp_proxy(clean_db.url) as proxy:
        settings = settings_for(
            CommonSettings,
            infra,
            keys,
            service_name="outagetest",
            event_bus="memory",
            log_level="INFO",
            database_url=proxy.url(clean_db.url),
        )
        app = create_service_app(
            settings=settings, title="outage test", routers=[router], migrations=migrations
        )
        async with running_app(app) as client:
            with structlog.testing.capture_logs() as captured:
                assert (await client.get("/count")).status_code == 200
                await proxy.cut()
                for _ in range(3):
                    resp = await client.get("/count")
                    assert_problem(resp, 503)
                    assert resp.headers["retry-after"] == "2"
                await asyncio.sleep(1)  # the outbox relay polls meanwhile
                await proxy.restore()
                await eventually(
                    lambda: _one(captured, "dependency_recovered", dependency="postgresql"), timeout=10
                )
                assert (await client.get("/count")).status_code == 200
    [warning] = lines(captured, "dependency_unavailable")
    assert warning["dependency"] == "postgresql"  # met first by a request or by the outbox relay's poll
    assert not [e for e in captured if e.get("exc_info") or e["log_level"] == "error"], captured


async def test_every_503_and_504_says_when_to_retry(infra: Infra, keys: TestKeys) -> None:
    """Redis away, the identity service away, a peer away or slow: each answer carries Retry-After."""
    router = APIRouter()

    @router.get("/me")
    async def me(user: CurrentUser) -> str:
        return str(user.user_id)

    @router.get("/cached")
    async def cached(request: Request) -> str | None:
        return await request.app.state.ctx.redis.get("outagetest:x")

    @router.get("/peer")
    async def peer(request: Request) -> None:
        await call(request.app.state.ctx.http, "GET", f"http://127.0.0.1:{free_port()}/x", service="catalog")

    @router.get("/slow")
    async def slow() -> None:
        raise GatewayTimeout("The catalog service did not answer in time.")

    @router.get("/refused")
    async def refused() -> None:
        raise ServiceUnavailable("The payment provider cannot be reached.")

    async with tcp_proxy(infra.redis_url) as redis_proxy:
        app = _app(infra, keys, router, redis_url=redis_proxy.url(infra.redis_url))
        async with running_app(app) as client:
            token = {"Authorization": f"Bearer {keys.mint()}"}
            assert (await client.get("/me", headers=token)).status_code == 200
            await redis_proxy.cut()
            answers = {
                "token check without Redis": await client.get("/me", headers=token),
                "cache without Redis": await client.get("/cached"),
                "peer away": await client.get("/peer"),
                "peer slow": await client.get("/slow"),
                "provider away": await client.get("/refused"),
            }
    dead_jwks = _app(infra, keys, router, jwks_url=f"http://127.0.0.1:{free_port()}/.well-known/jwks.json")
    async with running_app(dead_jwks) as client:
        answers["identity service away"] = await client.get("/me", headers=token)
    for what, resp in answers.items():
        assert_problem(resp, 504 if what == "peer slow" else 503)
        assert resp.headers.get("retry-after") == "2", (what, resp.headers)


async def test_a_token_with_a_key_rotated_in_is_a_503_not_a_401_while_the_jwks_cannot_be_read(
    infra: Infra, keys: TestKeys
) -> None:
    """Calling it invalid would sign its user out; once the JWKS answers again it is accepted."""
    redis = Redis.from_url(infra.redis_url)
    async with tcp_proxy(keys.jwks_url) as jwks_proxy:
        verifier = TokenVerifier(
            jwks_url=jwks_proxy.url(keys.jwks_url),
            issuer=keys.issuer,
            audience=keys.audience,
            redis=redis,
            redis_prefix=infra.redis_prefix,
            min_refresh_interval=0.0,
        )
        await verifier.verify(keys.mint())
        await jwks_proxy.cut()
        rotated = keys.mint(kid=keys.add_key())
        with pytest.raises(ServiceUnavailable):
            await verifier.verify(rotated)
        await jwks_proxy.restore()
        assert (await verifier.verify(rotated)).token == rotated
    await redis.aclose()


# --- the broker: the libraries' reconnect chatter becomes one warning and one info line ---------


async def test_a_cut_broker_connection_logs_one_warning_one_recovery_and_no_traceback(
    amqp: AmqpNames, logs: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    async with tcp_proxy(amqp.url) as proxy:
        bus = amqp.bus(proxy.url(amqp.url), topology={"cart": ["product.*"]})
        got: list[str] = []

        async def handler(envelope: Envelope) -> None:
            got.append(str(envelope.id))

        bus.subscribe("cart", ["product.*"], handler)
        await bus.start()
        try:
            await proxy.cut()
            await asyncio.sleep(3)  # aio-pika tries to reconnect every second meanwhile
            with pytest.raises(ConnectionError):
                await bus.publish(event("product.created"))
            await proxy.restore()
            await bus.wait_connected(15)

            async def consuming_again() -> None:
                sent = event("product.updated")
                try:
                    await bus.publish(sent)
                except ConnectionError as exc:  # the channels are restored a moment after the connection
                    raise AssertionError("not publishing yet") from exc
                await eventually(lambda: _contains(got, str(sent.id)), timeout=2)

            await eventually(consuming_again, timeout=15)
            # logged once aio-pika has restored every channel, which may be after the first delivery
            await eventually(lambda: _one(logs, "dependency_recovered", dependency=RABBITMQ), timeout=15)
        finally:
            await bus.close()
    assert [(e["dependency"], e["log_level"]) for e in lines(logs, "dependency_unavailable")] == [
        (RABBITMQ, "warning")
    ]
    library = [r for r in caplog.records if r.name.startswith(("aiormq", "aio_pika"))]
    assert not [r for r in library if r.exc_info or r.levelno >= logging.WARNING], [
        (r.name, r.levelname, r.getMessage()) for r in library
    ]


async def _contains(got: list[str], item: str) -> None:
    assert item in got


async def test_a_peer_that_cannot_be_reached_is_a_503_naming_it() -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(ServiceUnavailable) as refused:
            await call(http, "GET", f"http://127.0.0.1:{free_port()}/x", service="cart", retries=0)
    assert "cart" in refused.value.detail and unavailable_dependency(refused.value) == "peer service"


def test_a_broker_stopping_for_a_restart_is_an_outage_line_not_an_error(
    logs: Captured, caplog: pytest.LogCaptureFixture
) -> None:
    """A RabbitMQ restart first closes every connection with reply code 320 (CONNECTION_FORCED), which
    aiormq logs at error level; a cut proxy cannot send it, so the line is written as aiormq writes it."""
    quiet_library_outage_logs()
    caplog.set_level(logging.INFO)
    aiormq_log = logging.getLogger("aiormq.connection")
    for _ in range(2):
        aiormq_log.error(
            'Unexpected connection close from remote "%s", Connection.Close(reply_code=%r, reply_text=%r)',
            "amqp://guest:******@127.0.0.1:5672/",
            320,
            "CONNECTION_FORCED - broker forced connection closure with reason 'shutdown'",
        )
    aiormq_log.error("Unexpected frame %r", "during the outage")  # dropped: the outage is known
    assert [(e["dependency"], e["log_level"]) for e in lines(logs, "dependency_unavailable")] == [
        (RABBITMQ, "warning")
    ]
    outages.up(RABBITMQ)
    aiormq_log.error("Unexpected frame %r", "after the outage")
    kept = [r.getMessage() for r in caplog.records if r.name == "aiormq.connection"]
    assert kept == ["Unexpected frame 'after the outage'"], kept
    assert len(lines(logs, "dependency_recovered", dependency=RABBITMQ)) == 1
