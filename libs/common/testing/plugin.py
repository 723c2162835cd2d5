"""pytest plugin: session fixtures for this run's real infrastructure and test keys."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from libs.common.testing.infra import Infra
from libs.common.testing.keys import TestKeys


@pytest_asyncio.fixture(scope="session")
async def infra() -> AsyncIterator[Infra]:
    """This run's PostgreSQL, Redis and RabbitMQ (from the environment), cleaned up at the end."""
    run = Infra.from_env()
    yield run
    await run.cleanup()


@pytest.fixture(scope="session")
def keys() -> Iterator[TestKeys]:
    """A signing key pair behind a real JWKS endpoint on loopback."""
    k = TestKeys()
    yield k
    k.close()
