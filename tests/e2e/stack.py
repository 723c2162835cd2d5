"""The whole system as separate processes, as `make up` runs it, for end-to-end tests.

Every part runs as ``python -m <module>`` on a free loopback port against this test
run's PostgreSQL databases, Redis prefix and RabbitMQ exchange; a real SMTP catcher
(aiosmtpd) receives the auth service's mail. Parts can be stopped and started again
to prove that nothing accepted is lost.
"""

from __future__ import annotations

import asyncio
import email
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path

import httpx
from aiosmtpd.controller import Controller

from libs.common import parts as registry
from libs.common.testing.apps import free_port
from libs.common.testing.infra import Infra

ROOT = Path(__file__).resolve().parents[2]
# name -> module run by `python -m`, services before the gateway (the registry's order)
PARTS = {p.name: p.module for p in registry.PARTS}


def part_sources(environ: Mapping[str, str]) -> dict[str, Path]:
    """``E2E_PART_SOURCES=orders=<dir>,...``: parts to run from another source tree (an earlier
    release, scripts/e2e_mixed.py); the others run from this checkout."""
    out: dict[str, Path] = {}
    for item in filter(None, environ.get("E2E_PART_SOURCES", "").split(",")):
        name, _, path = item.partition("=")
        if name not in PARTS or not (Path(path) / PARTS[name].replace(".", "/")).is_dir():
            raise ValueError(f"E2E_PART_SOURCES: {item!r} does not name a part and a source tree holding it")
        out[name] = Path(path).resolve()
    return out


class MailCatcher:
    """A real SMTP server on loopback that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if address.lower() in str(m["To"]).lower()]


@dataclass
class Stack:
    """Handles on the running parts: URLs, env, logs, and stop/start per part."""

    infra: Infra
    workdir: Path
    mail: MailCatcher
    ports: dict[str, int] = field(default_factory=lambda: {name: free_port() for name in PARTS})
    internal_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # E2E_STACK_ENV (JSON): settings every part gets on top (null removes one), e.g. what an
    # earlier release needs to share the broker's queues (scripts/e2e_mixed.py)
    extra_env: dict[str, str | None] = field(
        default_factory=lambda: json.loads(os.environ.get("E2E_STACK_ENV") or "{}")
    )
    # parts run from another source tree (an earlier release) instead of this checkout
    sources: dict[str, Path] = field(default_factory=lambda: part_sources(os.environ))

    # E2E_SKIP_PARTS=a,b: parts not started (newer than the release whose journeys run)
    skipped: frozenset[str] = field(
        default_factory=lambda: frozenset(filter(None, os.environ.get("E2E_SKIP_PARTS", "").split(",")))
    )

    def source(self, part: str) -> Path:
        return self.sources.get(part, ROOT)

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{self.ports[part]}"

    # every capability is here; an external stack (tests/e2e/external.py) may lack one and skip
    def require_mail(self) -> None:
        pass

    def require_part_control(self) -> None:
        pass

    @property
    def gateway(self) -> str:
        return self.url("gateway")

    def env(self, part: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "COV_"))}
        env.update(self.infra.env())
        env.update(
            {
                "PORT": str(self.ports[part]),
                "HOST": "127.0.0.1",
                "LOG_JSON": "true",
                "LOG_LEVEL": "INFO",
                "INTERNAL_API_TOKEN": self.internal_token,
                "EVENT_RETRY_DELAYS": "[0.2,0.5,1]",
                "OUTBOX_POLL_INTERVAL": "0.5",
                "JWKS_URL": f"{self.url('auth')}/.well-known/jwks.json",
                "EMAIL_BACKEND": "smtp",
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.mail.port),
                "PAYMENT_PROVIDER": "fake",
                # the tests' webhook receivers listen on loopback
                "WEBHOOK_ALLOW_PRIVATE": "true",
                "PYTHONUNBUFFERED": "1",
                # several stacks and test apps share one PostgreSQL (max_connections 100 by default)
                "DB_POOL_SIZE": "3",
                # one loopback address plays every shopper here: limits sized for a crowd behind one NAT
                "RATE_LIMITS": '{"default": {"rate": 1000, "burst": 2000}, "auth": {"rate": 500, "burst": 1000}}',
                # and signs in as the admin in every console test: 30 sign-ins a minute is a real shop's
                "LOGIN_ATTEMPTS_PER_IP": "600",
            }
        )
        for name in PARTS:
            env[f"{name.upper()}_URL"] = self.url(name)
        # product images as `make up` keeps them without MEDIA_S3_ENDPOINT: in a directory, served at
        # the gateway's /media (the console shows them under its CSP's img-src 'self')
        env.setdefault("MEDIA_LOCAL_DIR", str(self.workdir / "media"))
        env.setdefault("MEDIA_PUBLIC_URL", f"{self.gateway}/media")
        for name, value in self.extra_env.items():
            if value is None:
                env.pop(name, None)
            else:
                env[name] = value
        if part in self.sources:  # its own code, kernel included, shadows this checkout's
            env["PYTHONPATH"] = str(self.sources[part])
        return env

    def log_path(self, part: str) -> Path:
        return self.workdir / f"{part}.log"

    def start(self, part: str) -> None:
        assert part not in self.procs or self.procs[part].poll() is not None, f"{part} already runs"
        log = self.log_path(part).open("ab")
        self.procs[part] = subprocess.Popen(
            [sys.executable, "-m", PARTS[part]],
            cwd=self.source(part),
            env=self.env(part),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self, part: str, *, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        proc = self.procs.get(part)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    async def wait_ready(self, part: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                proc = self.procs[part]
                if proc.poll() is not None:
                    raise RuntimeError(f"{part} exited with {proc.returncode}:\n{self.tail(part)}")
                try:
                    # the gateway's readiness is its upstreams', which were each awaited already
                    path = "/healthz" if part == "gateway" else "/readyz"
                    resp = await client.get(f"{self.url(part)}{path}")
                    if resp.status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{part} not ready after {timeout}s:\n{self.tail(part)}")
                await asyncio.sleep(0.2)

    async def restart(self, part: str) -> None:
        self.stop(part)
        self.start(part)
        await self.wait_ready(part)

    def tail(self, part: str, lines: int = 40) -> str:
        path = self.log_path(part)
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    async def up(self) -> None:
        self.mail.start()
        # auth first: every other part fetches its JWKS; the rest start side by side
        self.start("auth")
        await self.wait_ready("auth")
        rest = [p for p in PARTS if p != "auth" and p not in self.skipped]
        for part in rest:
            self.start(part)
        await asyncio.gather(*(self.wait_ready(p) for p in rest))

    def down(self) -> None:
        for part in list(self.procs):
            self.stop(part)
        self.mail.stop()
