"""Fixtures: notifications on the real PostgreSQL and RabbitMQ, auth served over real HTTP (it publishes
user.registered and answers the address lookups), and a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
import pytest_asyncio
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from libs.common.events import Envelope
from libs.common.testing import Infra, TestKeys, eventually, running_app, serve_app, settings_for
from libs.common.testing.apps import free_port
from services.auth.app import create_app as create_auth_app
from services.auth.settings import AuthSettings
from services.notifications.app import create_app
from services.notifications.context import NotificationsContext
from services.notifications.settings import NotificationsSettings

PASSWORD = "correct-Horse-7"
REFUSED = "refused-"  # recipients whose local part starts so are refused for good (550)


@dataclass
class Received:
    """One message as the SMTP server got it: the envelope's recipients and the parsed message."""

    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(preferencelist=("plain",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())

    @property
    def html(self) -> str:
        part = self.message.get_body(preferencelist=("html",))
        assert isinstance(part, EmailMessage)
        return str(part.get_content())


@dataclass
class SmtpServer:
    """A real SMTP server on loopback that can be stopped and started again on its port (an outage)."""

    port: int
    received: list[Received] = field(default_factory=list)
    controller: Controller | None = None

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address.startswith(REFUSED):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(
            envelope.original_content or envelope.content, policy=email.policy.default
        )
        assert isinstance(msg, EmailMessage)
        self.received.append(Received(list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def to(self, address: str) -> list[Received]:
        return [r for r in self.received if address in r.rcpt_tos]


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer(port=free_port())
    server.start()
    yield server
    server.stop()


@pytest_asyncio.fixture(scope="session")
async def auth_url(infra: Infra) -> AsyncIterator[str]:
    port = free_port()
    settings = settings_for(
        AuthSettings, infra, port=port, jwks_url=f"http://127.0.0.1:{port}/.well-known/jwks.json"
    )
    async with serve_app(create_auth_app(settings), port=port) as url:
        yield url


@pytest_asyncio.fixture(scope="session")
async def notifications_app(
    infra: Infra, keys: TestKeys, smtp: SmtpServer, auth_url: str
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    # a database and queue of its own: the whole-system stack of tests/e2e runs its own
    # notifications on this run's names, and two senders on one database would share its mail
    settings = settings_for(
        NotificationsSettings,
        infra,
        keys,
        db_prefix=f"{infra.db_prefix}nt_",
        events_queue_prefix=f"{infra.queue_prefix}nt.",
        auth_url=auth_url,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        shop_name="Lovelace & Co",
        shop_address="Unter den Linden 1, 10117 Berlin",
        email_retry_base=0.2,
        email_retry_max=0.4,
        email_max_attempts=2,
        email_poll_interval=0.2,
    )
    app = create_app(settings)
    async with running_app(app) as client:
        yield app, client


@dataclass
class Shop:
    """Notifications as a test drives it: auth to sign up with, the bus, the admin API, the SMTP server."""

    client: httpx.AsyncClient
    ctx: NotificationsContext
    keys: TestKeys
    auth: httpx.AsyncClient
    smtp: SmtpServer

    @property
    def admin(self) -> dict[str, str]:
        return self.keys.bearer(role="admin")

    async def sign_up(self, *, name: str = "Ada Lovelace") -> dict[str, Any]:
        """A customer registered through auth (which publishes user.registered); their user."""
        address = f"ada-{uuid.uuid4().hex[:10]}@example.com"
        resp = await self.auth.post(
            "/auth/register", json={"email": address, "password": PASSWORD, "name": name}
        )
        assert resp.status_code == 201, resp.text
        return dict(resp.json()["user"])

    async def publish(self, envelope: Envelope) -> Envelope:
        """Publish through the app's real RabbitMQ bus, as a producer's relay would, and wait until handled."""
        await self.ctx.bus.publish(envelope)
        assert self.ctx.db is not None
        db = self.ctx.db

        async def handled() -> None:
            async with db.session() as s:
                row = await s.scalar(
                    sa.text("SELECT 1 FROM processed_events WHERE event_id = :e"), {"e": envelope.id}
                )
            assert row == 1, f"event {envelope.id} not handled yet"

        await eventually(handled, timeout=10)
        return envelope

    async def mails_to(self, address: str, count: int = 1, timeout: float = 10) -> list[Received]:
        """The messages the SMTP server got for ``address``, once there are ``count``."""

        async def arrived() -> list[Received]:
            got = self.smtp.to(address)
            assert len(got) >= count, f"{len(got)} of {count} mails to {address}"
            return got

        return await eventually(arrived, timeout=timeout)

    async def settled(self, **query: Any) -> list[dict[str, Any]]:
        """The deliveries once none of them is pending (the server may answer before the row is marked)."""

        async def none_pending() -> list[dict[str, Any]]:
            rows = await self.deliveries(**query)
            assert rows and all(r["status"] != "pending" for r in rows), rows
            return rows

        return await eventually(none_pending)

    async def deliveries(self, **query: Any) -> list[dict[str, Any]]:
        resp = await self.client.get("/admin/emails", params=query, headers=self.admin)
        assert resp.status_code == 200, resp.text
        return list(resp.json()["items"])


@pytest_asyncio.fixture
async def shop(
    notifications_app: tuple[FastAPI, httpx.AsyncClient], keys: TestKeys, auth_url: str, smtp: SmtpServer
) -> AsyncIterator[Shop]:
    app, client = notifications_app
    async with httpx.AsyncClient(base_url=auth_url, timeout=30) as auth:
        yield Shop(client=client, ctx=app.state.ctx, keys=keys, auth=auth, smtp=smtp)
