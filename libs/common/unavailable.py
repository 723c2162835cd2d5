"""Telling "a dependency is down" apart from "this request or event is wrong".

The difference decides what happens next. A request that failed because PostgreSQL
or Redis could not be reached is a 503 the client may retry, never a 500. An event
whose handler failed for the same reason is not a bad event: it must wait for the
outage to end however long it lasts, instead of spending its retries and landing in
the dead-letter queue while nothing is wrong with it.
"""

from __future__ import annotations

import sqlalchemy.exc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from libs.common.errors import ServiceUnavailable

# SQLSTATE classes that describe the server's state rather than the statement:
# 08 connection exception, 53 insufficient resources (too many connections, out of
# memory or disk), 57P shutting down or starting up.
_SERVER_STATE_SQLSTATES = ("08", "53", "57P")


def is_db_unavailable(exc: sqlalchemy.exc.DBAPIError) -> bool:
    """Whether the database could not be reached or would not take us, rather than refused the query."""
    if exc.connection_invalidated or isinstance(exc, sqlalchemy.exc.InterfaceError):
        return True
    seen: BaseException | None = exc.orig
    while seen is not None:
        state = getattr(seen, "sqlstate", None) or getattr(seen, "pgcode", None)
        if isinstance(state, str) and state.startswith(_SERVER_STATE_SQLSTATES):
            return True
        if isinstance(seen, (OSError, ConnectionError)):
            return True
        seen = seen.__cause__
    text = f"{type(exc.orig).__name__} {exc.orig}".lower()
    return any(w in text for w in ("connection", "connect", "closed", "cannot", "terminat"))


def is_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says a dependency is down, so trying again later may succeed."""
    seen: BaseException | None = exc
    for _ in range(8):  # a cause chain is short; the bound guards against a cycle
        if seen is None:
            return False
        if isinstance(seen, sqlalchemy.exc.DBAPIError):
            return is_db_unavailable(seen)
        if isinstance(seen, (sqlalchemy.exc.TimeoutError, RedisConnectionError, RedisTimeoutError, ConnectionError, OSError,
                             TimeoutError, ServiceUnavailable)):
            return True
        seen = seen.__cause__
    return False
