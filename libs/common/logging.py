"""Structured logs (structlog, JSON) carrying the request and correlation ids.

The ids live in contextvars so that a log line written deep inside a handler, an
outbox relay or an event consumer is tied to the request (or event) that caused it.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from typing import Any

import structlog

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def _add_ids(_: object, __: str, event_dict: dict) -> dict:
    if (rid := request_id_var.get()) is not None:
        event_dict.setdefault("request_id", rid)
    if (cid := correlation_id_var.get()) is not None:
        event_dict.setdefault("correlation_id", cid)
    return event_dict


def configure_logging(*, service: str, level: str = "INFO", json: bool = True) -> None:
    """Route stdlib and structlog output through one JSON (or console) renderer."""
    renderer = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_ids,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.bind_contextvars(service=service)
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format="%(name)s %(levelname)s %(message)s")
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    """A structlog logger; the name is kept as the ``logger`` field."""
    return structlog.get_logger(logger_name=name) if name else structlog.get_logger()
