"""Per-run names on the real servers, so test runs never collide with each other or dev data.

Databases are ``shoptest_<run>_<service>``, Redis keys ``shoptest:<run>:``, the
exchange ``shop.events.<run>`` and queues ``<run>.<service>.events``; everything is
removed when the run ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import unquote, urlparse

import asyncpg
from redis.asyncio import Redis

from libs.common.config import CommonSettings
from libs.common.events.topology import CONSUMERS, declared_queues
from libs.common.testing.keys import TestKeys

S = TypeVar("S", bound=CommonSettings)
RETRY_DELAYS = [0.1, 0.2]  # settings_for's event retry delays
# seconds a test run's queues outlive their last use: a killed run's durable queues delete themselves
QUEUE_EXPIRES = 3600.0


@dataclass
class Infra:
    """The real servers of this test run and the names reserved for it."""

    pg_dsn: str
    redis_url: str
    amqp_url: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @classmethod
    def from_env(cls) -> Infra:
        return cls(
            pg_dsn=os.environ.get("PG_DSN", "postgresql://postgres@127.0.0.1:5432"),
            redis_url=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
            amqp_url=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
        )

    @property
    def db_prefix(self) -> str:
        return f"shoptest_{self.run_id}_"

    @property
    def redis_prefix(self) -> str:
        return f"shoptest:{self.run_id}:"

    @property
    def exchange(self) -> str:
        return f"shop.events.{self.run_id}"

    @property
    def queue_prefix(self) -> str:
        return f"{self.run_id}."

    def env(self) -> dict[str, str]:
        """Environment for a part started as a separate process in this run."""
        return {
            "ENV": "test",
            "PG_DSN": self.pg_dsn,
            "DB_PREFIX": self.db_prefix,
            "REDIS_URL": self.redis_url,
            "REDIS_PREFIX": self.redis_prefix,
            "AMQP_URL": self.amqp_url,
            "EVENTS_EXCHANGE": self.exchange,
            "EVENTS_QUEUE_PREFIX": self.queue_prefix,
            "EVENT_QUEUE_EXPIRES": str(QUEUE_EXPIRES),
        }

    async def cleanup(self) -> None:
        await self._drop_databases()
        await self._delete_redis_keys()
        await self._delete_amqp()

    async def _drop_databases(self) -> None:
        conn = await asyncpg.connect(
            f"{self.pg_dsn.rstrip('/')}/postgres".replace("+asyncpg", ""), timeout=10
        )
        try:
            names = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datname LIKE $1",
                self.db_prefix.replace("_", r"\_") + "%",
            )
            for row in names:
                await conn.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
        finally:
            await conn.close()

    async def _delete_redis_keys(self) -> None:
        redis = Redis.from_url(self.redis_url)
        try:
            async for key in redis.scan_iter(match=f"{self.redis_prefix}*", count=1000):
                await redis.delete(key)
        finally:
            await redis.aclose()

    async def _delete_amqp(self) -> None:

        names = set(self._listed_queues())
        # retry queues of the default and the test delays, for machines without rabbitmqctl
        default = CommonSettings.model_fields["event_retry_delays"].get_default(call_default_factory=True)
        delays = {*default, *RETRY_DELAYS}
        for service in CONSUMERS:
            names.update(declared_queues(f"{self.queue_prefix}{service}.events", delays))
        await delete_amqp(self.amqp_url, names, self.exchange)

    def _listed_queues(self) -> list[str]:
        """Queue names of this run, when rabbitmqctl is here to list them (retry queues included)."""
        if shutil.which("rabbitmqctl") is None:
            return []
        vhost = unquote(urlparse(self.amqp_url).path.lstrip("/")) or "/"
        try:
            out = subprocess.run(
                ["rabbitmqctl", "-q", "list_queues", "-p", vhost, "name"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            return []
        return [line.strip() for line in out.splitlines() if line.strip().startswith(self.queue_prefix)]


async def delete_amqp(url: str, queues: Iterable[str], exchange: str) -> None:
    """Delete these queues (missing ones are fine) and the exchange."""
    import aio_pika

    conn = await aio_pika.connect(url, timeout=5)
    try:
        for name in sorted(set(queues)):
            channel = await conn.channel()
            with contextlib.suppress(Exception):  # missing queues close the channel: fine
                await channel.queue_delete(name)
            if not channel.is_closed:
                await channel.close()
        channel = await conn.channel()
        with contextlib.suppress(Exception):
            await channel.exchange_delete(exchange)
    finally:
        await conn.close()


def settings_for(cls: type[S], infra: Infra, keys: TestKeys | None = None, **overrides: Any) -> S:
    """A service's settings pointed at this run's servers and names (fast retries, test env)."""
    values: dict[str, Any] = {
        "env": "test",
        "pg_dsn": infra.pg_dsn,
        "db_prefix": infra.db_prefix,
        "redis_url": infra.redis_url,
        "redis_prefix": infra.redis_prefix,
        "amqp_url": infra.amqp_url,
        "events_exchange": infra.exchange,
        "events_queue_prefix": infra.queue_prefix,
        "event_queue_expires": QUEUE_EXPIRES,
        "event_retry_delays": list(RETRY_DELAYS),
        "event_max_attempts": 3,
        "outbox_poll_interval": 0.2,
        "log_json": False,
        "log_level": "WARNING",
    }
    if keys is not None:
        values["jwks_url"] = keys.jwks_url
        values["jwt_issuer"] = keys.issuer
        values["jwt_audience"] = keys.audience
    values.update(overrides)
    return cls(_env_file=None, **values)
