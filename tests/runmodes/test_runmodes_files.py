"""The full-stack and container run modes, checked without starting them (no Docker engine here).

docker-compose.yml is loaded as YAML and every part must be buildable from its own
Dockerfile, health-checked, configured by environment, published on its documented
port and started only after the servers it needs are healthy; each Dockerfile must
start the right module. The Procfile (``make up``) must run every part, and
.env.example must document every setting.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# part -> (module run by `python -m`, documented port, Dockerfile, settings class)
PARTS: dict[str, tuple[str, int, str, str]] = {
    "gateway": ("gateway", 8000, "gateway/Dockerfile", "gateway.settings:GatewaySettings"),
    "auth": ("services.auth", 8001, "services/auth/Dockerfile", "services.auth.settings:AuthSettings"),
    "catalog": ("services.catalog", 8002, "services/catalog/Dockerfile", "services.catalog.settings:CatalogSettings"),
    "cart": ("services.cart", 8003, "services/cart/Dockerfile", "services.cart.settings:CartSettings"),
    "orders": ("services.orders", 8004, "services/orders/Dockerfile", "services.orders.settings:OrdersSettings"),
    "payments": ("services.payments", 8005, "services/payments/Dockerfile",
                 "services.payments.settings:PaymentsSettings"),
    "realtime": ("services.realtime", 8006, "services/realtime/Dockerfile",
                 "services.realtime.settings:RealtimeSettings"),
}
INFRA = {"postgres": "postgres:16", "redis": "redis:7", "rabbitmq": "rabbitmq:3-management"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_runs_every_part_and_the_three_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(PARTS) | set(INFRA) <= set(services)
    for name, image in INFRA.items():
        assert services[name]["image"].startswith(image), name
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_compose_builds_each_part_from_its_own_dockerfile(compose: dict[str, Any], part: str) -> None:
    build = compose["services"][part]["build"]
    assert build["context"] == "."
    assert build["dockerfile"] == PARTS[part][2]
    assert (ROOT / build["dockerfile"]).is_file(), f"{build['dockerfile']} is missing"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_compose_publishes_each_part_on_its_documented_port_and_checks_its_health(
        compose: dict[str, Any], part: str) -> None:
    svc = compose["services"][part]
    port = PARTS[part][1]
    assert f"{port}:{port}" in svc["ports"]
    assert str(svc["environment"]["PORT"]) == str(port)
    probe = " ".join(svc["healthcheck"]["test"])
    assert f"127.0.0.1:{port}/healthz" in probe


@pytest.mark.parametrize("part", sorted(PARTS))
def test_compose_configures_each_part_by_environment_with_compose_hostnames(
        compose: dict[str, Any], part: str) -> None:
    env = compose["services"][part]["environment"]
    assert env["HOST"] == "0.0.0.0"
    assert env["PG_DSN"].startswith("postgresql://") and "@postgres:5432" in env["PG_DSN"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672" in env["AMQP_URL"]
    assert env["JWKS_URL"] == "http://auth:8001/.well-known/jwks.json"
    for other, (_, port, _, _) in PARTS.items():
        if other != "gateway":
            assert env[f"{other.upper()}_URL"] == f"http://{other}:{port}"


@pytest.mark.parametrize("part", sorted(PARTS))
def test_compose_starts_each_part_after_what_it_needs_is_healthy(compose: dict[str, Any], part: str) -> None:
    depends = compose["services"][part]["depends_on"]
    assert all(d["condition"] == "service_healthy" for d in depends.values())
    needs = {"redis", "rabbitmq"} if part == "realtime" else {"redis"} if part == "gateway" else set(INFRA)
    assert needs <= set(depends)
    if part == "gateway":
        assert set(PARTS) - {"gateway"} <= set(depends)


def _dockerfile_cmd(path: Path) -> list[str]:
    """The exec-form CMD of a Dockerfile (backslash continuations joined)."""
    text = re.sub(r"\\\n", " ", path.read_text())
    cmds = [line.strip()[4:] for line in text.splitlines() if line.strip().upper().startswith("CMD ")]
    assert cmds, f"{path} has no CMD"
    last = cmds[-1].strip()
    return json.loads(last) if last.startswith("[") else shlex.split(last)


@pytest.mark.parametrize("part", sorted(PARTS))
def test_each_image_starts_its_own_module(compose: dict[str, Any], part: str) -> None:
    module = PARTS[part][0]
    svc = compose["services"][part]
    assert "command" not in svc, "the image's own CMD must start the part"
    cmd = _dockerfile_cmd(ROOT / PARTS[part][2])
    assert cmd[:3] == ["python", "-m", module]
    text = (ROOT / PARTS[part][2]).read_text()
    assert re.search(r"^USER\s+(?!root)\S+", text, re.M), "the image must run as a non-root user"


def test_compose_seeds_an_empty_catalog_once_it_is_healthy(compose: dict[str, Any]) -> None:
    job = compose["services"]["catalog-seed"]
    assert job["command"][:4] == ["python", "-m", "services.catalog", "seed"]
    assert job["depends_on"]["catalog"]["condition"] == "service_healthy"
    assert job["restart"] == "no"


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}``, as ``docker compose`` reads it."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), value)


@pytest.mark.parametrize("env", [{}, {"SHOP_NET": "172.29"}], ids=["development", "make e2e-compose"])
def test_the_gateway_address_is_inside_the_subnet_and_the_one_auth_trusts(env: dict[str, str]) -> None:
    compose = yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), env))
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    gateway = ipaddress.ip_address(compose["services"]["gateway"]["networks"]["default"]["ipv4_address"])
    assert gateway in subnet
    auth = compose["services"]["auth"]["environment"]
    assert str(gateway) in json.loads(auth["TRUSTED_PROXIES"])
    assert str(gateway) in auth["FORWARDED_ALLOW_IPS"].split(",")
    if env:
        assert f"E2E_NET ?= {env['SHOP_NET']}" in (ROOT / "Makefile").read_text()


def _procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return {n.strip(): c.strip() for n, _, c in (ln.partition(":") for ln in lines if ln and not ln.startswith("#"))}


def test_procfile_runs_every_part_with_its_module_on_its_port() -> None:
    procfile = _procfile()
    assert set(procfile) == set(PARTS)
    for part, command in procfile.items():
        module, port = PARTS[part][:2]
        words = command.split()
        # honcho would otherwise hand every line PORT=5000, 5100...
        assert words[0] == f"PORT={port}"
        assert words[1:] == ["python", "-m", module]


def test_up_script_reads_the_procfile_modules() -> None:
    import importlib.util

    spec = importlib.util.spec_from_file_location("shop_up_script", ROOT / "scripts" / "up.py")
    assert spec and spec.loader
    up = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(up)
    parts = up.procfile_parts()
    assert list(parts) == list(_procfile())
    assert {n: up.module_of(c) for n, c in parts.items()} == {n: v[0] for n, v in PARTS.items()}
    # only the parts with a database have a `migrate` command
    assert set(up.MIGRATED) == {"auth", "catalog", "cart", "orders", "payments"}


def _settings_env_names(spec: str) -> set[str]:
    module, _, name = spec.partition(":")
    cls = getattr(importlib.import_module(module), name)
    names = set()
    for field_name, field in cls.model_fields.items():
        if field_name == "service_name":
            continue  # fixed per part, not configuration
        alias = field.validation_alias
        names.add((alias if isinstance(alias, str) else field_name).upper())
    return names


@pytest.mark.parametrize("spec", ["libs.common.config:CommonSettings", *(v[3] for v in PARTS.values())])
def test_env_example_documents_every_setting(spec: str) -> None:
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = _settings_env_names(spec) - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_changes_nothing_when_copied_to_dotenv() -> None:
    # every line is commented out: `cp .env.example .env` must not point `make dev` at other servers
    lines = [ln for ln in (ROOT / ".env.example").read_text().splitlines() if ln.strip()]
    assert all(ln.startswith("#") for ln in lines)
