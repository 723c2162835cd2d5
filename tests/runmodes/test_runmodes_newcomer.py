"""What a newcomer meets before the shop runs: a busy port, where the admin is written, which payment
provider ``make dev`` picks. Each check starts nothing but the devserver's own pre-flight."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from devserver import embedded
from services.payments.settings import PaymentsSettings
from tests.runmodes.test_runmodes_embedded import INFRA_ENV, ROOT, _free_offset


def test_a_busy_port_stops_the_devserver_at_once_naming_the_port_and_the_offset_to_use(
    tmp_path: Path,
) -> None:
    offset = _free_offset()
    with socket.socket() as taken:  # someone else's stack on the gateway's port
        taken.bind(("127.0.0.1", 8000 + offset))
        taken.listen()
        env = {k: v for k, v in os.environ.items() if k not in INFRA_ENV and not k.startswith("PYTEST")}
        env.update(PYTHONPATH=str(ROOT), DEV_PORT_OFFSET=str(offset))  # the offset through the environment
        done = subprocess.run(
            [sys.executable, "-m", "devserver", "--data-dir", str(tmp_path / "data")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert f"port {8000 + offset} (gateway) already in use" in out
    assert 'make dev ARGS="--port-offset ' in out and "Shop is running" not in out
    suggested = int(out.split("--port-offset ")[1].split('"')[0])
    assert suggested > offset and not embedded.busy_ports(list(embedded.PARTS), "127.0.0.1", suggested)
    assert not (tmp_path / "data" / "pg").exists(), "nothing is started when a port is taken"


def test_admin_from_the_environment_is_written_to_admin_txt_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no developer's .env
    monkeypatch.setenv("ADMIN_EMAIL", "boss@shop.test")
    monkeypatch.setenv("ADMIN_PASSWORD", "Env-pass-123")
    email, password, saved = embedded.admin_credentials(tmp_path)
    assert (email, password) == ("boss@shop.test", "Env-pass-123")
    assert embedded.read_env_file(saved) == {
        "ADMIN_EMAIL": "boss@shop.test",
        "ADMIN_PASSWORD": "Env-pass-123",
    }
    assert saved.stat().st_mode & 0o777 == 0o600
    monkeypatch.delenv("ADMIN_PASSWORD")  # a generated one is kept for the next start
    monkeypatch.delenv("ADMIN_EMAIL")
    first = embedded.admin_credentials(tmp_path)
    assert first[0] == embedded.DEFAULT_ADMIN_EMAIL and embedded.admin_credentials(tmp_path) == first


def test_make_dev_picks_the_payment_provider_as_documented(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("PAYMENT_PROVIDER", raising=False)
    monkeypatch.delenv("STRIPE_SECRET_KEY", raising=False)
    args = embedded.parse_args(["--data-dir", str(tmp_path)])
    payments = next(p for p in embedded.PARTS if p.name == "payments")
    infra = embedded.EmbeddedInfra(tmp_path)

    def provider() -> str:
        overrides = embedded.part_overrides(payments, args, infra, ("a@b.c", "x"))
        settings = PaymentsSettings(
            **{k: v for k, v in overrides.items() if k in PaymentsSettings.model_fields}
        )
        return embedded._provider_line(settings)

    assert provider().startswith("fake (no STRIPE_SECRET_KEY)")
    monkeypatch.setenv("STRIPE_SECRET_KEY", "sk_test_123")
    assert provider() == "stripe (STRIPE_SECRET_KEY is set)"
    monkeypatch.setenv("PAYMENT_PROVIDER", "fake")
    assert provider().startswith("fake (PAYMENT_PROVIDER)")
