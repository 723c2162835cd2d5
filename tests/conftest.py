"""Session fixture: the whole system up once, shared by every suite that drives it through the gateway
(end-to-end journeys, the console in a browser, security fuzzing).

With ``SHOP_GATEWAY_URL`` set the suites drive that running stack instead (tests/e2e/external.py),
and nothing is started here: not even this run's PostgreSQL, Redis and RabbitMQ.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator

import httpx
import pytest
import pytest_asyncio

from libs.common.testing.infra import Infra
from tests.e2e.external import ExternalStack, external_stack
from tests.e2e.shopper import ADMIN_EMAIL, ADMIN_PASSWORD
from tests.e2e.stack import MailCatcher, Stack


@pytest.fixture(scope="session")
def local_infra(request: pytest.FixtureRequest) -> Infra | None:
    """This run's servers, only when the stack is ours to start (a sync fixture: it may ask for
    the async ``infra`` fixture, which an async fixture, already in the loop, cannot)."""
    if external_stack(os.environ) is not None:
        return None
    infra: Infra = request.getfixturevalue("infra")
    return infra


@pytest_asyncio.fixture(scope="session")
async def stack(
    local_infra: Infra | None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack | ExternalStack]:
    external = external_stack(os.environ)
    if external is not None or local_infra is None:
        assert external is not None
        await external.wait_ready()
        yield external
        return
    infra = local_infra
    s = Stack(infra=infra, workdir=tmp_path_factory.mktemp("e2e"), mail=MailCatcher())
    try:
        await s.up()
        made = await asyncio.to_thread(
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
            cwd=s.source("auth"),
            env=s.env("auth"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert made.returncode == 0, f"create-admin failed:\n{made.stdout}\n{made.stderr}"
        yield s
    finally:
        s.down()
        if os.environ.get("E2E_SHOW_LOGS"):
            for part in s.procs:
                print(f"--- {part}\n{s.tail(part, 80)}")


@pytest_asyncio.fixture
async def gw(stack: Stack | ExternalStack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway, timeout=20) as client:
        yield client
