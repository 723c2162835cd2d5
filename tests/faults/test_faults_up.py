"""``make up`` survives one part dying: scripts/up.py starts it again and says so.

Under honcho, SIGKILL of orders stopped the whole shop. Here two parts run the way
``make up`` runs them (scripts/up.py, each ``python -m <module>`` under the supervisor);
orders is killed with SIGKILL, catalog must keep serving meanwhile, and orders must be
started again after its back-off and answer. Then one Ctrl-C stops everything.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from libs.common.parts import BY_NAME, PARTS
from libs.common.testing.infra import Infra

ROOT = Path(__file__).resolve().parents[2]
RUN = ("catalog", "orders")

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True)
def healed() -> Iterator[None]:
    """This module runs no proxied fault stack: shadows the package's autouse fixture that starts one."""
    yield


def _free_offset() -> int:
    def free(port: int) -> bool:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                return False
        return True

    for _ in range(50):
        offset = random.randrange(20000, 50000, 10)
        if all(free(p.port + offset) for p in PARTS):
            return offset
    raise RuntimeError("no free block of ports")


class Up:
    def __init__(self, infra: Infra, log: Path) -> None:
        self.offset, self.log = _free_offset(), log
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
        env.update(infra.env())
        env.update({"INTERNAL_API_TOKEN": "test-internal-token-up", "DB_POOL_SIZE": "2", "LOG_JSON": "false"})
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "scripts/up.py",
                "--skip-infra",
                "--seed-products",
                "0",
                "--only",
                *RUN,
                "--port-offset",
                str(self.offset),
            ],
            cwd=ROOT,
            env=env,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def url(self, part: str) -> str:
        return f"http://127.0.0.1:{BY_NAME[part].port + self.offset}"

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def pids(self, part: str) -> list[int]:
        return [int(pid) for pid in re.findall(rf"^\S+ {part}\s+\| started \(pid (\d+)", self.text(), re.M)]

    def wait_until(self, check: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"make up exited with {self.proc.returncode} before {what}:\n{self.tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if check():
                    return
            if time.monotonic() > deadline:
                pytest.fail(f"no {what} after {timeout} s:\n{self.tail()}")
            time.sleep(0.2)

    def tail(self) -> str:
        return "\n".join(self.text().splitlines()[-60:])

    def kill_all(self) -> None:
        """After a failure: the supervisor and every part it started (each in a session of its own)."""
        pids = [pid for part in RUN for pid in self.pids(part)]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead too: it only waits for its parent to collect it
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(") ")[-1].startswith("Z"))


def test_a_part_killed_under_make_up_comes_back_and_the_others_keep_serving(
    infra: Infra, tmp_path: Path
) -> None:
    up = Up(infra, tmp_path / "up.log")
    try:
        with httpx.Client(timeout=3) as client:

            def serving(part: str) -> bool:
                return client.get(f"{up.url(part)}/readyz").status_code == 200

            def browsing() -> bool:
                return client.get(f"{up.url('catalog')}/products").status_code == 200

            up.wait_until(lambda: serving("orders") and browsing(), "orders and catalog ready", 90)
            [first] = up.pids("orders")

            os.kill(first, signal.SIGKILL)
            up.wait_until(
                lambda: bool(
                    re.search(
                        r"orders\s+\| exited \(killed by SIGKILL\) after [\d.]+ s; restarting in 1 s \(restart 1\)",
                        up.text(),
                    )
                ),
                "a restart announced in the log",
                15,
            )
            assert browsing(), "catalog stopped serving when orders died"

            up.wait_until(lambda: len(up.pids("orders")) == 2, "orders started again", 15)
            second = up.pids("orders")[1]
            assert second != first and not _alive(first)
            up.wait_until(lambda: serving("orders"), "orders ready again", 60)
            assert browsing()

        up.proc.send_signal(signal.SIGINT)
        assert up.proc.wait(timeout=30) == 0, up.tail()
        assert not _alive(second), "Ctrl-C left orders running"
        assert re.search(r"orders\s+\| stopped", up.text()) and re.search(r"catalog\s+\| stopped", up.text())
    finally:
        if up.proc.poll() is None:
            up.kill_all()
