"""The full-stack and container run modes, checked without starting them (no Docker engine here).

Everything that enumerates parts must agree with the registry (libs/common/parts.py):
docker-compose.yml (loaded as YAML) runs every part from the one Dockerfile, publishes only
the gateway and refuses default secrets outside dev; the Dockerfile's build step resolves a
part's module and port from the registry; each part's code and settings are where the
registry says; .env.example documents every setting.
"""

from __future__ import annotations

import importlib
import ipaddress
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.config import CommonSettings
from libs.common.parts import GATEWAY, PARTS, SERVICES, Part

ROOT = Path(__file__).resolve().parents[2]
NAMES = [p.name for p in PARTS]
BY_NAME = {p.name: p for p in PARTS}
INFRA = ("postgres", "redis", "rabbitmq")
BASE_ARG = {"BASE_IMAGE": "${SHOP_BASE_IMAGE:-debian:bookworm-slim}"}


def _interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ``${NAME:-default}``, as ``docker compose`` reads it."""
    return re.sub(r"\$\{(\w+):-([^}]*)\}", lambda m: env.get(m.group(1)) or m.group(2), value)


def _settings_class(p: Part) -> type[CommonSettings]:
    cls: type[CommonSettings] = getattr(importlib.import_module(f"{p.module}.settings"), p.settings)
    return cls


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


# --- the registry -------------------------------------------------------------------------------


def test_the_registry_names_each_part_and_port_once() -> None:
    assert len(set(NAMES)) == len(PARTS) and len({p.port for p in PARTS}) == len(PARTS)
    assert GATEWAY.name == "gateway" and GATEWAY not in SERVICES


def test_every_runnable_service_folder_is_in_the_registry() -> None:
    # a part with a __main__ that the registry forgot would be started by nothing
    runnable = {d.name for d in (ROOT / "services").iterdir() if (d / "__main__.py").is_file()}
    assert runnable <= set(NAMES), f"not in libs/common/parts.py: {sorted(runnable - set(NAMES))}"


@pytest.mark.parametrize("name", NAMES)
def test_each_part_has_its_app_factory_and_settings_where_the_registry_says(name: str) -> None:
    p = BY_NAME[name]
    assert callable(importlib.import_module(f"{p.module}.app").create_app)
    settings = _settings_class(p)()
    assert settings.service_name == p.name
    assert settings.port == p.port, "a part listens on the registry's port unless PORT says otherwise"
    assert (ROOT / p.module.replace(".", "/") / "__main__.py").is_file()


@pytest.mark.parametrize("name", NAMES)
def test_a_part_with_a_database_has_migrations_and_one_without_has_none(name: str) -> None:
    p = BY_NAME[name]
    assert (ROOT / p.module.replace(".", "/") / "migrations" / "env.py").is_file() == p.database


def test_every_part_is_reached_where_the_template_puts_it_unless_its_url_is_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for p in PARTS:
        monkeypatch.delenv(p.url_env, raising=False)
    monkeypatch.setenv("CART_URL", "http://cart.example:9/")
    settings = CommonSettings(_env_file=None, part_url_template="http://{name}.svc:{port}")
    for p in PARTS:
        want = "http://cart.example:9" if p.name == "cart" else f"http://{p.name}.svc:{p.port}"
        assert settings.url_of(p.name) == want
    assert settings.cart_url == "http://cart.example:9"
    assert settings.jwks_url == "http://auth.svc:8001/.well-known/jwks.json"
    with pytest.raises(KeyError, match=r"parts\.py knows"):
        settings.url_of("nowhere")


# --- docker-compose.yml -------------------------------------------------------------------------


def test_compose_runs_every_part_and_the_three_servers(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(NAMES) | set(INFRA) <= set(services)
    for name in INFRA:
        # built from Debian's packages on the shop's base image: no image registry needed
        assert services[name]["build"] == {
            "context": ".",
            "dockerfile": f"deploy/docker/{name}.Dockerfile",
            "args": BASE_ARG,
        }, name
        assert (ROOT / "deploy" / "docker" / f"{name}.Dockerfile").is_file()
        assert services[name]["healthcheck"]["test"], f"{name} has no health check"


@pytest.mark.parametrize("name", NAMES)
def test_compose_builds_each_part_from_the_one_dockerfile(compose: dict[str, Any], name: str) -> None:
    svc = compose["services"][name]
    assert svc["build"] == {"context": ".", "dockerfile": "Dockerfile", "args": {**BASE_ARG, "PART": name}}
    assert "command" not in svc, "the image's own CMD must start the part"
    assert svc["restart"] == "unless-stopped", "a part that dies must be started again"


def test_only_the_gateway_is_published_and_the_servers_only_on_loopback(compose: dict[str, Any]) -> None:
    services = compose["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {GATEWAY.name, *INFRA, "mailcatcher"}
    assert services["gateway"]["ports"] == [f"${{GATEWAY_PORT:-{GATEWAY.port}}}:{GATEWAY.port}"]
    for name in (*INFRA, "mailcatcher"):  # the mail catcher shows every mail to whoever reaches it
        assert all(_interpolate(port, {}).startswith("127.0.0.1:") for port in services[name]["ports"]), name


@pytest.mark.parametrize("name", NAMES)
def test_compose_configures_each_part_by_environment_with_compose_hostnames(
    compose: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {k: _interpolate(str(v), {}) for k, v in compose["services"][name]["environment"].items()}
    assert env["HOST"] == "0.0.0.0" and "PORT" not in env
    assert env["PG_DSN"].startswith("postgresql://") and "@postgres:5432" in env["PG_DSN"]
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["AMQP_URL"].startswith("amqp://") and "@rabbitmq:5672" in env["AMQP_URL"]
    # what the part's settings make of it: every other part by its compose service name
    for k in list(os.environ):
        if k.endswith("_URL") or k in ("PORT", "PART_URL_TEMPLATE", "PART_URLS"):
            monkeypatch.delenv(k)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = _settings_class(BY_NAME[name])(_env_file=None)
    assert {p.name: settings.url_of(p.name) for p in PARTS} == {
        p.name: f"http://{p.name}:{p.port}" for p in PARTS
    }
    assert settings.jwks_url == f"http://auth:{BY_NAME['auth'].port}/.well-known/jwks.json"
    assert settings.port == BY_NAME[name].port


@pytest.mark.parametrize("name", NAMES)
def test_compose_starts_each_part_after_what_it_needs(compose: dict[str, Any], name: str) -> None:
    p = BY_NAME[name]
    depends = dict(compose["services"][name]["depends_on"])  # anchors: one dict shared by every part
    assert depends.pop("preflight") == {"condition": "service_completed_successfully"}
    assert all(d["condition"] == "service_healthy" for d in depends.values())
    needs = {"redis"} | ({"postgres"} if p.database else set()) | ({"rabbitmq"} if p.bus else set())
    assert needs <= set(depends)


def test_compose_keeps_catalog_images_in_its_s3_server_with_the_bucket_made_at_start(
    compose: dict[str, Any],
) -> None:
    s3 = compose["services"]["s3"]
    # built from the shop's Debian base like the other servers: no image registry needed
    assert s3["build"] == {"context": ".", "dockerfile": "deploy/docker/s3.Dockerfile", "args": BASE_ARG}
    dockerfile = (ROOT / "deploy" / "docker" / "s3.Dockerfile").read_text()
    pinned = re.search(r'"moto\[server\]==([\d.]+)"', dockerfile)
    assert pinned and f"moto[server]=={pinned.group(1)}" in (ROOT / "pyproject.toml").read_text(), (
        "the compose server is the moto the image tests run against"
    )
    assert "create_bucket" in (ROOT / "deploy" / "docker" / "s3-start.py").read_text()
    assert s3["healthcheck"]["test"] and "S3_BUCKET" in s3["healthcheck"]["test"][-1]
    catalog = compose["services"]["catalog"]
    env = {k: _interpolate(str(v), {}) for k, v in catalog["environment"].items()}
    assert env["MEDIA_S3_ENDPOINT"] == "http://s3:9000"
    assert env["MEDIA_S3_BUCKET"] == _interpolate(s3["environment"]["S3_BUCKET"], {}) == "shop-media"
    assert catalog["depends_on"]["s3"] == {"condition": "service_healthy"}
    # the bucket is never published (it takes any credentials): images are shown through the gateway
    assert "ports" not in s3
    assert env["MEDIA_PUBLIC_URL"] == f"http://127.0.0.1:{GATEWAY.port}/media"


def test_compose_seeds_an_empty_catalog_once_it_is_healthy(compose: dict[str, Any]) -> None:
    job = compose["services"]["catalog-seed"]
    assert job["command"][:4] == ["python", "-m", "services.catalog", "seed"]
    assert job["build"]["args"] == {**BASE_ARG, "PART": "catalog"}
    assert job["depends_on"] == {"catalog": {"condition": "service_healthy"}}
    assert job["restart"] == "no"


def _preflight(compose: dict[str, Any], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The preflight service's check, run by sh with its environment as compose would give it."""
    svc = compose["services"]["preflight"]
    assert svc["command"][:2] == ["sh", "-c"]
    script = svc["command"][2].replace("$$", "$")  # compose's escape of a literal $
    values = {k: _interpolate(str(v), env) for k, v in svc["environment"].items()}
    return subprocess.run(
        ["sh", "-c", script],
        env={"PATH": os.environ["PATH"], **values},
        capture_output=True,
        text=True,
        check=False,
        timeout=10,
    )


SECRETS = {
    "INTERNAL_API_TOKEN": "t0ken-of-this-deployment",
    "POSTGRES_PASSWORD": "pg-pass-of-it",
    "RABBITMQ_PASSWORD": "mq-pass-of-it",
    "SIGNING_KEY_ENCRYPTION_KEY": "a-fernet-key",
}


def test_compose_starts_with_its_published_defaults_only_as_a_development_stack(
    compose: dict[str, Any],
) -> None:
    assert _preflight(compose, {}).returncode == 0
    assert _preflight(compose, {"SHOP_ENV": "dev"}).returncode == 0
    for env in ("prod", "test"):
        refused = _preflight(compose, {"SHOP_ENV": env})
        assert refused.returncode == 1
        assert all(name in refused.stderr for name in SECRETS), refused.stderr
        one_left = _preflight(compose, {"SHOP_ENV": env, **SECRETS, "RABBITMQ_PASSWORD": "shop"})
        assert one_left.returncode == 1 and "RABBITMQ_PASSWORD" in one_left.stderr
        assert "INTERNAL_API_TOKEN" not in one_left.stderr
        assert _preflight(compose, {"SHOP_ENV": env, **SECRETS}).returncode == 0


def test_every_part_and_server_waits_for_the_preflight_or_uses_its_secrets(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in NAMES:
        assert "preflight" in services[name]["depends_on"], name
    env = {k: _interpolate(str(v), SECRETS) for k, v in services["auth"]["environment"].items()}
    assert SECRETS["POSTGRES_PASSWORD"] in env["PG_DSN"] and SECRETS["RABBITMQ_PASSWORD"] in env["AMQP_URL"]
    assert env["INTERNAL_API_TOKEN"] == SECRETS["INTERNAL_API_TOKEN"]
    assert _interpolate(services["postgres"]["environment"]["POSTGRES_PASSWORD"], SECRETS) == "pg-pass-of-it"
    assert (
        _interpolate(services["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"], SECRETS) == "mq-pass-of-it"
    )


@pytest.mark.parametrize("env", [{}, {"SHOP_NET": "172.29"}], ids=["development", "make e2e-compose"])
def test_the_gateway_address_is_inside_the_subnet_and_auth_trusts_no_address(env: dict[str, str]) -> None:
    compose = yaml.safe_load(_interpolate((ROOT / "docker-compose.yml").read_text(), env))
    subnet = ipaddress.ip_network(compose["networks"]["default"]["ipam"]["config"][0]["subnet"])
    gateway = ipaddress.ip_address(compose["services"]["gateway"]["networks"]["default"]["ipv4_address"])
    assert gateway in subnet
    auth = compose["services"]["auth"]["environment"]
    # the gateway's X-Forwarded-For counts through its proof header; an address list would let any
    # container at that address (or any local process, for 127.0.0.1) claim any client address
    assert "TRUSTED_PROXIES" not in auth and "FORWARDED_ALLOW_IPS" not in auth
    if env:
        assert f"E2E_NET ?= {env['SHOP_NET']}" in (ROOT / "Makefile").read_text()


# --- the one Dockerfile -------------------------------------------------------------------------


def _dockerfile() -> str:
    return re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())


def _instruction(name: str) -> list[str]:
    return [
        line.strip()[len(name) + 1 :]
        for line in _dockerfile().splitlines()
        if line.strip().startswith(name + " ")
    ]


def test_there_is_one_dockerfile_for_every_part() -> None:
    assert (
        not list((ROOT / "services").glob("*/Dockerfile")) and not (ROOT / "gateway" / "Dockerfile").exists()
    )
    text = _dockerfile()
    assert re.search(r"^USER\s+(?!root)\S+", text, re.M), "the image must run as a non-root user"
    # only what running needs: no extra (dev: embedded servers, test: test tools)
    assert re.search(r"pip install \.\s", text) and "[dev]" not in text and "[test]" not in text


def _build_step(part: str | None, workdir: Path) -> subprocess.CompletedProcess[str]:
    """The Dockerfile's step that resolves the part, run by sh here (python: this interpreter)."""
    [run] = [r for r in _instruction("RUN") if "part.env" in r]
    step = run.split("&&", 1)[-1].replace("/app/part.env", str(workdir / "part.env"))
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "PYTHONPATH": str(ROOT)}
    if part is not None:
        env["PART"] = part
    return subprocess.run(["sh", "-c", step], cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", NAMES)
def test_the_image_starts_the_module_the_registry_names_on_its_port(name: str, tmp_path: Path) -> None:
    done = _build_step(name, tmp_path)
    assert done.returncode == 0, done.stderr
    p = BY_NAME[name]
    assert (tmp_path / "part.env").read_text().split() == [f"SHOP_MODULE={p.module}", f"SHOP_PORT={p.port}"]
    [cmd] = _instruction("CMD")
    assert json.loads(cmd) == ["sh", "-c", '. /app/part.env && exec python -m "$SHOP_MODULE"']
    [health] = _instruction("HEALTHCHECK")
    assert '"http://127.0.0.1:${PORT:-$SHOP_PORT}/healthz"' in json.loads(health.split(" CMD ", 1)[1])[2]


@pytest.mark.parametrize("part", [None, "nowhere"], ids=["no PART", "unknown PART"])
def test_an_image_of_no_known_part_fails_to_build(part: str | None, tmp_path: Path) -> None:
    done = _build_step(part, tmp_path)
    assert done.returncode != 0
    assert ("PART" in done.stderr) if part is None else ("parts.py knows" in done.stderr)


# --- make up ------------------------------------------------------------------------------------


def _up_script() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("shop_up_script", ROOT / "scripts" / "up.py")
    assert spec and spec.loader
    up = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = up  # its dataclasses look their module up
    spec.loader.exec_module(up)
    return up


def test_up_runs_every_part_of_the_registry_on_its_port() -> None:
    up = _up_script()
    assert up.parse_args([]).only is None
    assert up.PARTS == PARTS
    for p in PARTS:
        env = up.part_env(p, {"PATH": "/bin"}, 0)
        assert env["PORT"] == str(p.port) and not any(k.endswith("_URL") for k in env)
        shifted = up.part_env(p, {}, 20000)
        assert shifted["PORT"] == str(p.port + 20000)
        assert all(shifted[o.url_env] == f"http://127.0.0.1:{o.port + 20000}" for o in PARTS)
    with pytest.raises(SystemExit):
        up.parse_args(["--only", "nowhere"])


def test_up_with_replicas_runs_n_processes_of_every_service_and_tells_each_of_all() -> None:
    up = _up_script()
    assert up.parse_args([]).replicas == 1 and up.parse_args(["--replicas", "2"]).replicas == 2
    procs = up.instances(list(PARTS), 2)
    names = [i.name for i in procs]
    assert names.count("gateway") == 1 and len(names) == 2 * len(PARTS) - 1 == len(set(names))
    ports = [i.port(0) for i in procs]
    assert len(set(ports)) == len(ports), "two processes on one port"
    catalog2 = next(i for i in procs if i.name == "catalog.2")
    env = up.part_env(catalog2, {}, 0, 2)
    assert env["PORT"] == str(BY_NAME["catalog"].port + up.REPLICA_PORT_STEP)
    assert env["CATALOG_URL"] == f"http://127.0.0.1:8002,http://127.0.0.1:{8002 + up.REPLICA_PORT_STEP}"
    assert env["GATEWAY_URL"] == "http://127.0.0.1:8000"


def test_up_keeps_images_in_data_media_unless_s3_is_configured(capsys: pytest.CaptureFixture[str]) -> None:
    up = _up_script()
    env: dict[str, str] = {}
    up.media_storage(env, "http://127.0.0.1:8100")
    assert env == {
        "MEDIA_LOCAL_DIR": str(ROOT / ".data" / "media"),
        "MEDIA_PUBLIC_URL": "http://127.0.0.1:8100/media",
    }
    s3 = {"MEDIA_S3_ENDPOINT": "http://127.0.0.1:9000"}
    up.media_storage(s3, "http://127.0.0.1:8000")
    assert s3 == {"MEDIA_S3_ENDPOINT": "http://127.0.0.1:9000"}
    assert ".data/media" in capsys.readouterr().out


def test_there_is_no_procfile_to_drift_from_the_registry() -> None:
    # make up runs the registry itself (scripts/up.py); a Procfile beside it would be a second list
    assert not (ROOT / "Procfile").exists()
    assert "honcho" not in (ROOT / "pyproject.toml").read_text()


# --- .env.example -------------------------------------------------------------------------------


def _settings_env_names(cls: type[CommonSettings]) -> set[str]:
    names = set()
    for field_name, field in cls.model_fields.items():
        if field_name == "service_name":
            continue  # fixed per part, not configuration
        alias = field.validation_alias
        names.add((alias if isinstance(alias, str) else field_name).upper())
    return names


@pytest.mark.parametrize("name", ["common", *NAMES])
def test_env_example_documents_every_setting(name: str) -> None:
    cls = CommonSettings if name == "common" else _settings_class(BY_NAME[name])
    text = (ROOT / ".env.example").read_text()
    documented = set(re.findall(r"^#?\s*([A-Z][A-Z0-9_]*)=", text, re.M))
    missing = _settings_env_names(cls) - documented
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_env_example_changes_nothing_when_copied_to_dotenv() -> None:
    # every line is commented out: `cp .env.example .env` must not point `make dev` at other servers
    lines = [ln for ln in (ROOT / ".env.example").read_text().splitlines() if ln.strip()]
    assert all(ln.startswith("#") for ln in lines)
