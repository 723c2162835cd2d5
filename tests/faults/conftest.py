"""A whole stack of its own for fault injection, every part talking to the servers through proxies.

The shared end-to-end stack (``tests/conftest.py``) must never see an outage, so the fault
tests run a second stack under their own run id (databases, Redis prefix, exchange and
queues) and remove it at the end. Each part reaches RabbitMQ, Redis and its own PostgreSQL
database through a cuttable proxy:

- ``amqp``: every part's broker link (orders through a proxy of its own, so a test can hold
  or cut the consumer's link alone);
- ``redis``: one proxy for every part that uses Redis;
- ``pg[service]``: one proxy per service database, so one service's database can fail alone.

After every test the proxies are restored and every part is running and ready again, so
the tests do not depend on each other's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aio_pika
import httpx
import pytest
import pytest_asyncio

from libs.common import parts as registry
from libs.common.events.topology import CONSUMERS
from libs.common.testing.infra import Infra
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.stack import PARTS, ROOT, MailCatcher, Stack
from tests.faults.proxies import HoldingProxy, ProxyHost

DB_SERVICES = tuple(p.name for p in registry.PARTS if p.database)
# short enough to keep the module quick, long enough (1.7 s in all) that a consumer retries
# through a brief outage of its own database instead of dead-lettering at once
RETRY_DELAYS = "[0.2,0.5,1]"
# small enough that a test can see a bucket run dry, large enough for the journeys' own traffic
RATE_LIMITS = '{"default": {"rate": 20, "burst": 40}, "auth": {"rate": 20, "burst": 40}}'


@dataclass
class FaultStack(Stack):
    """A :class:`Stack` whose parts may each get a few variables of their own."""

    part_env: dict[str, dict[str, str]] = field(default_factory=dict)

    def env(self, part: str) -> dict[str, str]:
        env = super().env(part)
        env.update(self.part_env.get(part, {}))
        return env


@dataclass
class Faults:
    """The running stack and the switches of its proxies."""

    stack: FaultStack
    host: ProxyHost
    direct: Infra  # the real servers, bypassing the proxies (for the tests' own look-ups)
    amqp: list[HoldingProxy]
    orders_amqp: HoldingProxy
    redis: HoldingProxy
    pg: dict[str, HoldingProxy]

    @property
    def every_proxy(self) -> list[HoldingProxy]:
        return [*self.amqp, self.redis, *self.pg.values()]

    def database_dsn(self, service: str) -> str:
        """The real (unproxied) DSN of a service's database, for asyncpg."""
        return f"{self.direct.pg_dsn.rstrip('/')}/{self.direct.db_prefix}{service}"

    async def heal(self) -> None:
        """Every proxy forwarding again, every part running and ready.

        Only a part a test killed is started again; one that exited by itself fails ``wait_ready``.
        """
        await self.host.restore(self.every_proxy)
        for part, proc in self.stack.procs.items():
            if proc.poll() == -signal.SIGKILL:
                self.stack.start(part)
        await asyncio.gather(*(self.stack.wait_ready(p, timeout=60) for p in PARTS))


@pytest_asyncio.fixture(scope="module")
async def faults(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Faults]:
    direct = Infra(pg_dsn=infra.pg_dsn, redis_url=infra.redis_url, amqp_url=infra.amqp_url)
    host = ProxyHost()
    shared_amqp, orders_amqp, redis = (
        host.add(direct.amqp_url),
        host.add(direct.amqp_url),
        host.add(direct.redis_url),
    )
    pg = {name: host.add(direct.pg_dsn) for name in DB_SERVICES}
    extra: dict[str, str | None] = {
        "AMQP_URL": shared_amqp.url(direct.amqp_url),
        "REDIS_URL": redis.url(direct.redis_url),
        "EVENT_RETRY_DELAYS": RETRY_DELAYS,
        "RATE_LIMITS": RATE_LIMITS,
        # the PostgreSQL server is shared with every other test run: keep this stack's share small
        "DB_POOL_SIZE": "4",
    }
    for name, proxy in pg.items():
        extra[f"{name.upper()}_DATABASE_URL"] = (
            f"{proxy.url(direct.pg_dsn).rstrip('/')}/{direct.db_prefix}{name}"
        )
    stack = FaultStack(
        infra=direct,
        workdir=tmp_path_factory.mktemp("faults"),
        mail=MailCatcher(),
        extra_env=extra,
        part_env={"orders": {"AMQP_URL": orders_amqp.url(direct.amqp_url)}},
    )
    handle = Faults(
        stack=stack,
        host=host,
        direct=direct,
        amqp=[shared_amqp, orders_amqp],
        orders_amqp=orders_amqp,
        redis=redis,
        pg=pg,
    )
    try:
        await stack.up()
        await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "services.auth",
                "create-admin",
                "--email",
                ADMIN_EMAIL,
                "--password",
                ADMIN_PASSWORD,
            ],
            cwd=ROOT,
            env=stack.env("auth"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        yield handle
    finally:
        with contextlib.suppress(Exception):
            await host.restore(handle.every_proxy)  # let the parts shut down cleanly
        stack.down()
        host.close()
        await direct.cleanup()
        await _delete_retry_queues(direct)


async def _delete_retry_queues(direct: Infra) -> None:
    """Remove the retry queues of this stack's delays, which ``Infra.cleanup`` does not know of."""
    delays = [float(d) for d in RETRY_DELAYS.strip("[]").split(",")]
    conn = await aio_pika.connect(direct.amqp_url, timeout=5)
    try:
        for service in CONSUMERS:
            for delay in delays:
                channel = await conn.channel()
                with contextlib.suppress(Exception):  # already gone: the channel closes, that is fine
                    await channel.queue_delete(
                        f"{direct.queue_prefix}{service}.events.retry.{int(delay * 1000)}ms"
                    )
                if not channel.is_closed:
                    await channel.close()
    finally:
        await conn.close()


@pytest_asyncio.fixture(autouse=True)
async def healed(faults: Faults) -> AsyncIterator[None]:
    yield
    await faults.heal()


@pytest_asyncio.fixture
async def gw(faults: Faults) -> AsyncIterator[httpx.AsyncClient]:
    """A client of this stack's gateway (shadows the shared stack's ``gw``)."""
    async with httpx.AsyncClient(base_url=faults.stack.gateway, timeout=20) as client:
        yield client
