"""Telling "a dependency is down" apart from "this request or event is wrong", and logging outages once.

The difference decides what happens next. A request that failed because PostgreSQL
or Redis could not be reached is a 503 the client may retry, never a 500. An event
whose handler failed for the same reason is not a bad event: it must wait for the
outage to end however long it lasts, instead of spending its retries and landing in
the dead-letter queue while nothing is wrong with it. Anything else is a bug: a 500
with its traceback logged, and an event that spends its retries and is dead-lettered.

The verdict comes from an error's type and, for PostgreSQL, its SQLSTATE class, never
from its message: a statement error such as ``ON CONFLICT DO UPDATE command cannot
affect row a second time`` says "cannot" and is still a bug, and a driver's wording
changes between versions.

An outage is logged as one warning when a process first meets it and one info line
when it is over (:data:`outages`), not as a traceback per request, event and retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Literal

import httpx
import sqlalchemy.exc
from aiormq.exceptions import AMQPConnectionError, ChannelInvalidStateError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ReadOnlyError as RedisReadOnlyError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.common.errors import DomainError
from libs.common.logging import get_logger

log = get_logger(__name__)

POSTGRESQL, REDIS, RABBITMQ, PEER, NETWORK = "postgresql", "redis", "rabbitmq", "peer service", "network"
# SQLSTATE classes that describe the server's state rather than the statement:
# 08 connection exception, 53 insufficient resources (too many connections, out of
# memory or disk), 57P shutting down, starting up or terminated by an administrator.
# Every other SQLSTATE (23505 unique violation, 21000 a second ON CONFLICT update, ...)
# is about the statement: a bug.
_SERVER_STATE_SQLSTATES = ("08", "53", "57P")
# what a socket says when the network or the server is not there (not ENOENT, EACCES, ...)
_NETWORK_ERRNOS = frozenset(
    {
        errno.ECONNREFUSED,
        errno.ECONNRESET,
        errno.ECONNABORTED,
        errno.EPIPE,
        errno.ETIMEDOUT,
        errno.EHOSTUNREACH,
        errno.EHOSTDOWN,
        errno.ENETUNREACH,
        errno.ENETDOWN,
        errno.ENETRESET,
        errno.ENOTCONN,
        errno.ESHUTDOWN,
        errno.EADDRNOTAVAIL,
    }
)
# AMQP reply code of a connection the broker closes because it is stopping (or an admin closed it)
_AMQP_CONNECTION_FORCED = 320
# which dependency a bare socket error is about, by the library whose code raised it
_LIBRARY_DEPENDENCY = {
    "asyncpg": POSTGRESQL,
    "sqlalchemy": POSTGRESQL,
    "redis": REDIS,
    "aiormq": RABBITMQ,
    "aio_pika": RABBITMQ,
    "httpx": PEER,
    "httpcore": PEER,
    "aiohttp": PEER,
}

Probe = Callable[[], Awaitable[object]]


class DependencyUnavailable(ConnectionError):
    """Raised by our own code when it knows which dependency it could not reach."""

    def __init__(self, dependency: str, detail: str) -> None:
        super().__init__(detail)
        self.dependency = dependency


def unavailable_dependency(exc: BaseException | None) -> str | None:
    """The dependency ``exc`` (or what it was raised from) says is down, or None when it is a bug."""
    seen = exc
    for _ in range(8):  # a cause chain is short; the bound guards against a cycle
        if seen is None:
            return None
        verdict = _verdict(seen)
        if verdict is False:
            return None
        if verdict is not None:
            return verdict
        if isinstance(seen, sqlalchemy.exc.DBAPIError) and seen.orig is not None:
            seen = seen.orig
        else:
            seen = seen.__cause__
    return None


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says a dependency is down, so trying again later may succeed."""
    return unavailable_dependency(exc) is not None


def is_db_unavailable(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether the database could not be reached or would not take us, rather than refused the statement."""
    return unavailable_dependency(exc) is not None


def _verdict(e: BaseException) -> str | Literal[False] | None:
    """A dependency's name (it is down), False (decided: not an outage) or None (ask its cause)."""
    if isinstance(e, DependencyUnavailable):
        return e.dependency
    if isinstance(e, sqlalchemy.exc.DBAPIError):
        # SQLAlchemy's own check after the error: the connection is gone, whatever the error said
        return POSTGRESQL if e.connection_invalidated else None
    if isinstance(e, sqlalchemy.exc.TimeoutError):  # no pooled connection came free in time
        return POSTGRESQL
    state = getattr(e, "sqlstate", None) or getattr(e, "pgcode", None)
    if isinstance(state, str) and state:
        return POSTGRESQL if state.startswith(_SERVER_STATE_SQLSTATES) else False
    if isinstance(e, (RedisConnectionError, RedisTimeoutError, RedisReadOnlyError)):
        return REDIS
    if isinstance(e, RedisError):  # WRONGTYPE, a script error, ...: the command is wrong
        return False
    if isinstance(e, (AMQPConnectionError, ChannelInvalidStateError)):
        return RABBITMQ
    if isinstance(e, DomainError):
        # a peer that answered 503/504 (or our http client's verdict on it); what it wraps may name more
        return (unavailable_dependency(e.__cause__) or PEER) if e.status in (502, 503, 504) else False
    if isinstance(e, httpx.HTTPStatusError):
        return PEER if e.response.status_code in (502, 503, 504) else False
    if isinstance(e, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return PEER
    if isinstance(e, (ConnectionError, TimeoutError, socket.gaierror)) or (
        isinstance(e, OSError) and e.errno in _NETWORK_ERRNOS
    ):
        return _raised_in(e.__traceback__) or NETWORK
    return None


def _raised_in(tb: TracebackType | None) -> str | None:
    """The dependency of the innermost client library on the traceback (names, never decides)."""
    found = None
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        found = _LIBRARY_DEPENDENCY.get(module.partition(".")[0], found)
        tb = tb.tb_next
    return found


def describe(exc: BaseException) -> str:
    """``Type: message`` of an error, short enough for one log field."""
    return f"{type(exc).__name__}: {exc}"[:300]


class Outages:
    """The dependencies this process currently finds down, so that each outage is logged once.

    ``down`` logs a warning the first time a dependency is found down and nothing while
    it stays down; ``up`` logs one info line with how long it lasted. A caller that can
    check the dependency (a ``ping``) passes it as ``probe``: the recovery is then noticed
    even when nothing else uses that dependency for a while.
    """

    def __init__(self) -> None:
        self._since: dict[str, float] = {}
        self._watchers: dict[str, asyncio.Task[None]] = {}

    def is_down(self, dependency: str) -> bool:
        return dependency in self._since

    def clear(self) -> None:
        """Forget every open outage without logging (a test that starts from a known state)."""
        self._since.clear()

    def down(
        self, dependency: str, error: BaseException | str, *, where: str, probe: Probe | None = None
    ) -> bool:
        """Note ``dependency`` as down; True if this began the outage (and logged it)."""
        began = dependency not in self._since
        if began:
            self._since[dependency] = time.monotonic()
            log.warning(
                "dependency_unavailable",
                dependency=dependency,
                where=where,
                error=error if isinstance(error, str) else describe(error),
            )
        if probe is not None and dependency not in self._watchers:
            with contextlib.suppress(RuntimeError):  # no running loop (a library logging from a thread)
                task = asyncio.get_running_loop().create_task(self._watch(dependency, probe))
                self._watchers[dependency] = task
                task.add_done_callback(lambda _t: self._watchers.pop(dependency, None))
        return began

    def up(self, *dependencies: str) -> None:
        """Note that ``dependencies`` answered again; logs the end of each outage that was open."""
        for dependency in dependencies:
            since = self._since.pop(dependency, None)
            if since is not None:
                log.info(
                    "dependency_recovered",
                    dependency=dependency,
                    down_for_s=round(time.monotonic() - since, 1),
                )

    def note(
        self, exc: BaseException, *, where: str, probes: Mapping[str, Probe] | None = None
    ) -> str | None:
        """Classify ``exc``; if it is an outage, note its dependency down. Returns the dependency or None."""
        dependency = unavailable_dependency(exc)
        if dependency is not None:
            probes = probes or {}
            # an error naming no dependency (a bare socket error) is over when all of them answer
            probe = probes.get(dependency) or (
                _all_of(probes.values()) if dependency == NETWORK and probes else None
            )
            self.down(dependency, exc, where=where, probe=probe)
        return dependency

    async def _watch(self, dependency: str, probe: Probe) -> None:
        delay = 0.5
        while dependency in self._since:
            await asyncio.sleep(delay)
            try:
                async with asyncio.timeout(2):
                    await probe()
            except Exception:
                delay = min(delay * 2, 5.0)
                continue
            self.up(dependency)


def dependency_probes(*, db: Any = None, redis: Any = None, bus: Any = None) -> dict[str, Probe]:
    """The checks :data:`outages` may run to notice a recovery: the ``ping`` of what a part holds."""
    held = {POSTGRESQL: db, REDIS: redis, RABBITMQ: bus}
    return {dependency: client.ping for dependency, client in held.items() if client is not None}


def _all_of(probes: Iterable[Probe]) -> Probe:
    """One probe that passes when every one of ``probes`` does (for an error naming no dependency)."""
    chosen = list(probes)

    async def every() -> None:
        for probe in chosen:
            await probe()

    return every


outages = Outages()


class _LibraryOutageFilter(logging.Filter):
    """Drops a client library's own lines about an outage (a traceback per reconnect attempt).

    A line carrying an outage error notes the outage (our one warning) and is dropped.
    While the library's dependency is known to be down, its other lines are dropped too:
    they are the consequences of the lost connection (callbacks of closed channels failing
    with a plain RuntimeError, reconnect attempts). Otherwise lines pass unchanged.
    """

    def __init__(self, dependency: str) -> None:
        super().__init__()
        self.dependency = dependency

    def filter(self, record: logging.LogRecord) -> bool:
        errors = [
            a for a in (record.args if isinstance(record.args, tuple) else ()) if isinstance(a, BaseException)
        ]
        if record.exc_info and record.exc_info[1] is not None:
            errors.append(record.exc_info[1])
        for error in errors:
            if (dependency := unavailable_dependency(error)) is not None:
                outages.down(dependency, error, where=record.name)
                return False
        if (
            self.dependency == RABBITMQ
            and isinstance(record.args, tuple)
            and _AMQP_CONNECTION_FORCED in record.args
        ):  # aiormq: the broker closed us as it stopped
            outages.down(
                RABBITMQ, f"the broker closed the connection ({_AMQP_CONNECTION_FORCED})", where=record.name
            )
            return False
        return not outages.is_down(self.dependency)


_LIBRARY_LOGGERS = {
    RABBITMQ: (
        "aiormq.connection",
        "aiormq.channel",
        "aio_pika.connection",
        "aio_pika.robust_connection",
        "aio_pika.channel",
        "aio_pika.robust_channel",
        "aio_pika.queue",
        "aio_pika.robust_queue",
        "aio_pika.exchange",
        "aio_pika.robust_exchange",
        "aio_pika.tools",
    ),
    POSTGRESQL: ("asyncpg.pool", "sqlalchemy.pool.impl.AsyncAdaptedQueuePool"),
}


def quiet_library_outage_logs() -> None:
    """Route the client libraries' outage lines through :data:`outages` (idempotent)."""
    for dependency, names in _LIBRARY_LOGGERS.items():
        for name in names:
            logger = logging.getLogger(name)
            if not any(isinstance(f, _LibraryOutageFilter) for f in logger.filters):
                logger.addFilter(_LibraryOutageFilter(dependency))
