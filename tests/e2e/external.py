"""Driving a stack someone else runs (``make e2e-compose``, a staging deployment) instead of starting one.

Selected by ``SHOP_GATEWAY_URL``; the journeys then see only the gateway, as a frontend
would. What they need beyond it comes from the environment:

- ``SHOP_ADMIN_EMAIL`` / ``SHOP_ADMIN_PASSWORD``: an admin of that stack (read by shopper.py);
- ``SHOP_MAIL_URL``: the HTTP side of tests/e2e/mailcatcher.py, where the stack's auth
  service sends its mail (without it the emailed-code journey is skipped);
- ``SHOP_PART_CONTROL=compose`` (with ``SHOP_COMPOSE``, the compose command line, by default
  ``docker compose``): how to stop and start a part (without it the journeys that stop one
  are skipped).

Skips happen only here: the stack the suite starts itself has every capability.
"""

from __future__ import annotations

import asyncio
import email
import shlex
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import Message

import httpx
import pytest


class ExternalStackError(RuntimeError):
    """The environment asks for an external stack but does not describe a usable one."""


@dataclass(frozen=True)
class HttpMailbox:
    """The messages a mail catcher of that stack received, read over its HTTP side."""

    url: str

    def to(self, address: str) -> list[Message]:
        resp = httpx.get(f"{self.url.rstrip('/')}/messages", params={"to": address}, timeout=5)
        resp.raise_for_status()
        return [email.message_from_string(m["raw"]) for m in resp.json()]


@dataclass(frozen=True)
class ComposeControl:
    """Stops and starts parts with the compose command line that started them."""

    command: tuple[str, ...] = ("docker", "compose")

    def run(self, action: str, part: str) -> None:
        done = subprocess.run(
            [*self.command, action, part], capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            raise ExternalStackError(
                f"{' '.join(self.command)} {action} {part} failed: {done.stderr.strip()}"
            )


@dataclass
class ExternalStack:
    """The same handles as :class:`tests.e2e.stack.Stack`, for a stack this run did not start."""

    gateway: str
    mail: HttpMailbox | None = None
    control: ComposeControl | None = None

    def require_mail(self) -> None:
        if self.mail is None:
            pytest.skip("external stack (SHOP_GATEWAY_URL) without SHOP_MAIL_URL: its emails cannot be read")

    def require_part_control(self) -> None:
        if self.control is None:
            pytest.skip(
                "external stack (SHOP_GATEWAY_URL) without SHOP_PART_CONTROL: parts cannot be stopped"
            )

    def stop(self, part: str) -> None:
        self.require_part_control()
        assert self.control is not None
        self.control.run("stop", part)

    def start(self, part: str) -> None:
        self.require_part_control()
        assert self.control is not None
        self.control.run("start", part)

    async def wait_ready(self, part: str | None = None, timeout: float = 120) -> None:
        """Ready when the gateway's own readiness is: that includes every upstream's ``/readyz``."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with httpx.AsyncClient(timeout=3) as client:
            while time.monotonic() < deadline:
                try:
                    resp = await client.get(f"{self.gateway}/readyz")
                    if resp.status_code == 200:
                        return
                    last = resp.text
                except httpx.HTTPError as exc:
                    last = f"{type(exc).__name__}: {exc}"
                await asyncio.sleep(0.5)
        raise TimeoutError(f"{self.gateway} not ready after {timeout}s ({part or 'stack'}): {last}")

    async def restart(self, part: str) -> None:
        self.stop(part)
        self.start(part)
        await self.wait_ready(part)


def external_stack(environ: Mapping[str, str]) -> ExternalStack | None:
    """The external stack the environment describes, or None to start one for this run."""
    gateway = environ.get("SHOP_GATEWAY_URL", "").strip()
    if not gateway:
        return None
    if not gateway.startswith(("http://", "https://")):
        raise ExternalStackError(f"SHOP_GATEWAY_URL must be an http(s) URL, not {gateway!r}")
    mail = environ.get("SHOP_MAIL_URL", "").strip()
    control = environ.get("SHOP_PART_CONTROL", "").strip()
    if control not in ("", "compose"):
        raise ExternalStackError(f"SHOP_PART_CONTROL={control!r}: the only way known is 'compose'")
    command = tuple(shlex.split(environ.get("SHOP_COMPOSE", "") or "docker compose"))
    return ExternalStack(
        gateway=gateway.rstrip("/"),
        mail=HttpMailbox(mail) if mail else None,
        control=ComposeControl(command) if control == "compose" else None,
    )
