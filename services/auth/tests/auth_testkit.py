"""Fixtures: one auth service served over real HTTP, a real SMTP server, helpers to sign up and in."""

from __future__ import annotations

import email
import random
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import httpx
import pytest
import pytest_asyncio
from aiosmtpd.controller import Controller
from fastapi import FastAPI

from libs.common.forwarding import proof_header
from libs.common.testing import Infra, serve_app, settings_for
from libs.common.testing.apps import free_port
from services.auth import service
from services.auth.app import create_app
from services.auth.context import AuthContext
from services.auth.settings import AuthSettings

PASSWORD = "correct-Horse-7"


@dataclass
class Mailbox:
    """What the SMTP server received."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"] == address.strip().lower()]

    def otp_for(self, address: str) -> str:
        """The code of the newest message to ``address``."""
        received = self.to(address)
        assert received, f"no email to {address}"
        payload = received[-1].get_payload(decode=True)
        assert isinstance(payload, bytes)
        body = payload.decode()
        match = re.search(r"\b(\d{6})\b", body)
        assert match, body
        return match.group(1)


@pytest.fixture(scope="session")
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    box.port = controller.port  # type: ignore[attr-defined]
    yield box
    controller.stop()


@pytest.fixture(scope="session")
def auth_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def auth_settings(infra: Infra, mailbox: Mailbox, auth_port: int) -> AuthSettings:
    return settings_for(
        AuthSettings,
        infra,
        port=auth_port,
        jwks_url=f"http://127.0.0.1:{auth_port}/.well-known/jwks.json",
        email_backend="smtp",
        smtp_host="127.0.0.1",
        smtp_port=mailbox.port,  # type: ignore[attr-defined]
        signing_key_cache_seconds=0,
        jwks_min_refresh_seconds=0,
    )


@pytest_asyncio.fixture(scope="session")
async def auth_app(auth_settings: AuthSettings, auth_port: int) -> AsyncIterator[FastAPI]:
    app = create_app(auth_settings)
    async with serve_app(app, port=auth_port):
        yield app


@pytest.fixture
def ctx(auth_app: FastAPI) -> AuthContext:
    return auth_app.state.ctx


def some_ip() -> str:
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def via_gateway(settings: AuthSettings, address: str) -> dict[str, str]:
    """The headers the gateway adds for a client at ``address``: its X-Forwarded-For and its proof."""
    return dict([("X-Forwarded-For", address), proof_header(settings)])


@pytest_asyncio.fixture
async def client(
    auth_app: FastAPI, auth_port: int, auth_settings: AuthSettings
) -> AsyncIterator[httpx.AsyncClient]:
    """A client behind its own address (relayed as the gateway does), so throttles stay per test."""
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{auth_port}", timeout=30, headers=via_gateway(auth_settings, some_ip())
    ) as c:
        yield c


def new_email(tag: str = "user") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def sign_up(
    client: httpx.AsyncClient,
    *,
    email_: str | None = None,
    password: str = PASSWORD,
    name: str = "Ada Lovelace",
) -> dict[str, Any]:
    resp = await client.post(
        "/auth/register", json={"email": email_ or new_email(), "password": password, "name": name}
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


async def sign_in(client: httpx.AsyncClient, email_: str, password: str = PASSWORD) -> dict[str, Any]:
    resp = await client.post("/auth/login", json={"email": email_, "password": password})
    assert resp.status_code == 200, resp.text
    return resp.json()


@pytest_asyncio.fixture
async def admin_tokens(ctx: AuthContext, client: httpx.AsyncClient) -> dict[str, Any]:
    """A fresh admin account (made the way the CLI makes one), signed in."""
    assert ctx.db is not None
    address = new_email("admin")
    async with ctx.db.session() as session:
        user, _ = await service.make_admin(
            session=session, passwords=ctx.state.passwords, email=address, password=PASSWORD, name="Root"
        )
    tokens = await sign_in(client, address)
    tokens["user_id"] = str(user.id)
    return tokens
