"""The e2e suite against a stack it did not start, and ``make e2e-compose``, checked without Docker.

The selection is proven for real: a stack is started here and the journeys run in a child
pytest that only gets its gateway URL (plus the mail catcher and the admin), as they would
against the containers. The make target is run with a stand-in ``docker`` that records its
calls, which shows the order up, test, down, and that down happens whatever fails.
"""

from __future__ import annotations

import asyncio
import os
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from libs.common.testing.apps import free_port
from libs.common.testing.infra import Infra
from tests.e2e.external import ComposeControl, ExternalStackError, HttpMailbox, external_stack
from tests.e2e.stack import PARTS, ROOT, Stack

MAILCATCHER = ROOT / "tests" / "e2e" / "mailcatcher.py"
ADMIN = ("admin@external.e2e.shop.test", "Admin-pass-external-1")


class MailProcess:
    """tests/e2e/mailcatcher.py as its own process: the stack's SMTP server, readable over HTTP."""

    def __init__(self) -> None:
        self.port, self.http_port = free_port(), free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(MAILCATCHER),
                "--host",
                "127.0.0.1",
                "--smtp-port",
                str(self.port),
                "--http-port",
                str(self.http_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            assert self.proc.poll() is None and time.monotonic() < deadline, "mailcatcher did not start"
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)


def _fake_docker(tmp_path: Path, *, up_status: int = 0) -> tuple[Path, Path]:
    calls = tmp_path / "calls"
    docker = tmp_path / "docker"
    # a healthy container for `ps` (scripts/containers.py wait), the given status for `up`, 0 for the rest
    healthy = "printf 'shop-e2e-gateway-1\\trunning\\tUp 5 seconds (healthy)\\n'"
    docker.write_text(
        f'#!/bin/sh\necho "$*" >> {calls}\n'
        f'case "$*" in *" up "*) exit {up_status};; ps*) {healthy};; esac\nexit 0\n'
    )
    docker.chmod(0o755)
    return docker, calls


def _make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_a_gateway_url_the_suite_starts_its_own_stack() -> None:
    assert external_stack({}) is None
    assert external_stack({"SHOP_GATEWAY_URL": "  "}) is None


def test_a_gateway_url_selects_that_stack_with_what_else_the_environment_gives() -> None:
    bare = external_stack({"SHOP_GATEWAY_URL": "http://shop.test:8000/"})
    assert bare is not None and bare.gateway == "http://shop.test:8000"
    assert bare.mail is None and bare.control is None
    full = external_stack(
        {
            "SHOP_GATEWAY_URL": "http://shop.test:8000",
            "SHOP_MAIL_URL": "http://mail.test:8025",
            "SHOP_PART_CONTROL": "compose",
            "SHOP_COMPOSE": "docker compose -p e2e -f a.yml",
        }
    )
    assert full is not None and full.mail == HttpMailbox("http://mail.test:8025")
    assert full.control == ComposeControl(("docker", "compose", "-p", "e2e", "-f", "a.yml"))
    with pytest.raises(ExternalStackError, match="kubectl"):
        external_stack({"SHOP_GATEWAY_URL": "http://shop.test", "SHOP_PART_CONTROL": "kubectl"})
    with pytest.raises(ExternalStackError, match="http"):
        external_stack({"SHOP_GATEWAY_URL": "shop.test:8000"})


def test_an_external_stack_skips_what_it_cannot_do_and_says_why() -> None:
    bare = external_stack({"SHOP_GATEWAY_URL": "http://shop.test"})
    assert bare is not None
    with pytest.raises(pytest.skip.Exception, match="SHOP_MAIL_URL"):
        bare.require_mail()
    with pytest.raises(pytest.skip.Exception, match="SHOP_PART_CONTROL"):
        bare.stop("orders")


def test_compose_control_stops_and_starts_a_part_by_its_service_name(tmp_path: Path) -> None:
    docker, calls = _fake_docker(tmp_path)
    control = ComposeControl((str(docker), "compose", "-p", "shop-e2e"))
    control.run("stop", "orders")
    control.run("start", "orders")
    assert calls.read_text().splitlines() == [
        "compose -p shop-e2e stop orders",
        "compose -p shop-e2e start orders",
    ]
    with pytest.raises(ExternalStackError, match="false stop orders failed"):
        ComposeControl(("false",)).run("stop", "orders")


def test_the_mail_catcher_offers_what_it_received_over_http() -> None:
    mail = MailProcess()
    mail.start()
    try:
        msg = EmailMessage()
        msg["From"], msg["To"], msg["Subject"] = "shop@shop.test", "Ada@Example.test", "Your code"
        msg.set_content("Your code is 123456.")
        with smtplib.SMTP("127.0.0.1", mail.port, timeout=10) as smtp:
            smtp.send_message(msg)
        box = HttpMailbox(mail.url)
        got = box.to("ada@example.test")
        assert len(got) == 1 and got[0]["Subject"] == "Your code"
        assert b"123456" in got[0].get_payload(decode=True)
        assert box.to("someone-else@example.test") == []
    finally:
        mail.stop()


def test_make_e2e_compose_brings_the_stack_up_runs_the_suite_against_it_and_tears_it_down() -> None:
    plan = _make("-n", "e2e-compose").stdout
    assert 'compose="$SHOP_COMPOSE_CMD -p shop-e2e -f docker-compose.yml -f docker-compose.e2e.yml"' in plan
    down, build, up, wait, suite = (
        plan.index('trap "$compose down -v --remove-orphans" EXIT'),
        plan.index("$compose build"),
        plan.index("$compose up -d"),
        plan.index("scripts/containers.py wait shop-e2e"),
        plan.index("-m pytest -q -rs tests/e2e"),
    )
    assert down < build < up < wait < suite
    # the published ports are picked after the (long) build, just before the containers start
    picked = plan.index("scripts/containers.py free-port")
    assert build < picked < up
    assert "export GATEWAY_PORT=127.0.0.1:$gateway_port" in plan
    assert "SHOP_GATEWAY_URL=http://127.0.0.1:$gateway_port " in plan, "the suite drives that port"
    for setting in (
        "SHOP_MAIL_URL=http://127.0.0.1:",
        "SHOP_PART_CONTROL=compose",
        'SHOP_COMPOSE="$compose"',
        "SHOP_ADMIN_EMAIL=",
        "SHOP_ADMIN_PASSWORD=",
        "POSTGRES_PUBLISH=127.0.0.1: ",
    ):
        assert setting in plan, setting


@pytest.mark.parametrize(("up_status", "suite_status"), [(0, 3), (1, 0)])
def test_make_e2e_compose_tears_down_whatever_fails(
    tmp_path: Path, up_status: int, suite_status: int
) -> None:
    docker, calls = _fake_docker(tmp_path, up_status=up_status)
    ran = tmp_path / "suite-ran"
    python = f'{sys.executable} -c \'open("{ran}", "w").close(); raise SystemExit({suite_status})\''
    done = _make("e2e-compose", f"DOCKER={docker}", f"PYTHON={python}")
    assert done.returncode != 0
    steps = calls.read_text().splitlines()
    assert steps[0] == "info", "the engine is asked first"
    ups = [i for i, line in enumerate(steps) if line.endswith(" up -d")]
    builds = [i for i, line in enumerate(steps) if line.endswith(" build")]
    assert builds and ups and builds[0] < ups[0]
    assert steps[-1].endswith("down -v --remove-orphans")
    assert ran.exists() is (up_status == 0), "the suite runs only against a stack that came up"


def test_make_e2e_compose_without_docker_fails_with_a_message(tmp_path: Path) -> None:
    done = _make("e2e-compose", f"DOCKER={tmp_path / 'no-docker'}")
    assert done.returncode != 0
    assert "no Docker engine answers" in done.stderr and "SHOP_GATEWAY_URL" in done.stderr


def test_the_compose_e2e_additions_give_the_suite_what_it_needs() -> None:
    # plain YAML: no Compose-v2-only tags (!reset, !override), so Debian's docker-compose 1.29 reads it too
    extra: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.e2e.yml").read_text())
    base = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = extra["services"]
    assert set(services) <= set(base["services"])
    # the mail catcher is the base's (every stack has one); make e2e-compose publishes it on a free port
    catcher = base["services"]["mailcatcher"]
    assert (ROOT / catcher["build"]["dockerfile"]).is_file()
    assert catcher["ports"] == ["${MAILCATCHER_PUBLISH:-127.0.0.1:8025}:8025"]
    # auth waits for it to be healthy, and so does `up --wait`: the health check is its Dockerfile's
    assert "HEALTHCHECK" in (ROOT / catcher["build"]["dockerfile"]).read_text()
    auth = services["auth"]["environment"]
    assert auth["EMAIL_BACKEND"] == "smtp" and auth["SMTP_HOST"] == "mailcatcher"
    assert "SHOP_ADMIN_EMAIL" in auth["ADMIN_EMAIL"] and "SHOP_ADMIN_PASSWORD" in auth["ADMIN_PASSWORD"]
    assert "RATE_LIMITS" in services["gateway"]["environment"]
    assert base["services"]["gateway"]["ports"] == ["${GATEWAY_PORT:-8000}:8000"], "make e2e-compose moves it"
    assert set(PARTS) <= set(base["services"]), "part control stops compose services by the parts' names"


@pytest.mark.e2e
async def test_the_journeys_run_against_a_stack_they_only_know_by_its_gateway_url(
    infra: Infra, tmp_path: Path
) -> None:
    mail = MailProcess()
    stack = Stack(infra=infra, workdir=tmp_path, mail=mail)  # type: ignore[arg-type]
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
                ADMIN[0],
                "--password",
                ADMIN[1],
            ],
            cwd=ROOT,
            env=stack.env("auth"),
            check=True,
            capture_output=True,
            timeout=60,
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "SHOP_"))}
        env.update(
            SHOP_GATEWAY_URL=stack.gateway,
            SHOP_MAIL_URL=mail.url,
            SHOP_ADMIN_EMAIL=ADMIN[0],
            SHOP_ADMIN_PASSWORD=ADMIN[1],
        )
        child = await asyncio.to_thread(
            subprocess.run,
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-rs",
                "-p",
                "no:cacheprovider",
                "tests/e2e/test_e2e_journeys.py",
                "tests/e2e/test_e2e_live.py",
                "-k",
                "guest or forgotten or orders_is_down or catalog_live or payments_restarting",
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        # the child started nothing: the reset code it read was mailed by the stack started here
        reset_mails = HttpMailbox(mail.url).to("@e2e.shop.test")
    finally:
        stack.down()
    out = child.stdout + child.stderr
    assert child.returncode == 0, out[-4000:]
    assert "3 passed, 2 skipped" in out, out[-2000:]
    assert "SKIPPED [2]" in out and "without SHOP_PART_CONTROL: parts cannot be stopped" in out, out[-2000:]
    assert [m for m in reset_mails if "forgetful" in str(m["To"])]
