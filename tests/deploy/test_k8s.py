"""The Kubernetes manifests (deploy/k8s) hold what DESIGN.md section 11 promises, for every part.

The overlays are rendered with kustomize (``kubectl kustomize``), every object is checked
against the Kubernetes API schemas (kubernetes-validate, strict) and by checkov, and the
rendered objects are read to check what a reviewer would: each part of the registry has its
Deployment, Service, probes, budget, autoscaler and a NetworkPolicy that admits only the
parts that call it. The checkers live in their own venv (``make k8s-tools``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from libs.common.parts import GATEWAY, PARTS, Part

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
TOOLS = ROOT / ".tools" / "k8s" / "bin"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor still supported by the major clouds
OVERLAYS = ("dev", "prod")


def tool(name: str) -> str:
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: run `make k8s-tools` (make test does)")
    return str(path)


def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is needed to render the overlays (it has kustomize built in)")
    return found


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One overlay rendered to a file, as `kubectl apply -k` would send it."""
    out = tmp_path_factory.mktemp("k8s") / f"{request.param}.yaml"
    result = subprocess.run(
        [kubectl(), "kustomize", str(K8S / "overlays" / request.param)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out.write_text(result.stdout, encoding="utf-8")
    yield out


def objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def one(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def test_base_is_generated_from_the_registry_of_parts() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "k8s_manifests.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_every_object_matches_the_kubernetes_api_schemas(rendered: Path) -> None:
    result = subprocess.run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBERNETES_VERSION, str(rendered)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_nothing_left_unexplained(rendered: Path) -> None:
    result = subprocess.run(
        [tool("checkov"), "--config-file", str(K8S / "checkov.yaml"), "-f", str(rendered)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "Failed checks: 0" in result.stdout


def test_every_checkov_skip_gives_its_reason() -> None:
    lines = (K8S / "checkov.yaml").read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines):
        if line.strip().startswith("- CKV"):
            assert lines[i - 1].strip().startswith("#"), f"{line.strip()} is skipped without a reason"


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_every_part_runs_as_a_hardened_deployment_with_probes(rendered: Path, part: Part) -> None:
    docs = objects(rendered)
    deployment = one(docs, "Deployment", f"shop-{part.name}")
    pod = deployment["spec"]["template"]["spec"]
    main = pod["containers"][0]
    assert main["command"] == ["python", "-m", part.module]
    assert main["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert main["resources"]["requests"] and main["resources"]["limits"]
    for container in (*pod.get("initContainers", ()), main):
        security = container["securityContext"]
        assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"]
        assert not security["allowPrivilegeEscalation"] and security["capabilities"]["drop"] == ["ALL"]
    assert pod["automountServiceAccountToken"] is False
    migrate = [c for c in pod.get("initContainers", ()) if c["name"] == "migrate"]
    assert bool(migrate) == part.database, "a part with a database migrates it before it starts"
    if migrate:
        assert migrate[0]["command"] == ["python", "-m", part.module, "migrate"]
    service = one(docs, "Service", f"shop-{part.name}")
    assert service["spec"]["ports"][0]["port"] == part.port
    assert one(docs, "PodDisruptionBudget", f"shop-{part.name}")["spec"]["maxUnavailable"] == 1
    hpa = one(docs, "HorizontalPodAutoscaler", f"shop-{part.name}")
    assert hpa["spec"]["scaleTargetRef"]["name"] == f"shop-{part.name}"


def test_secrets_come_from_a_secret_never_from_the_manifests(rendered: Path) -> None:
    docs = objects(rendered)
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        env = {e["name"] for c in deployment["spec"]["template"]["spec"]["containers"] for e in c["env"]}
        assert not env & {"PG_DSN", "REDIS_URL", "AMQP_URL", "INTERNAL_API_TOKEN", "STRIPE_SECRET_KEY"}
        sources = deployment["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert any(s.get("secretRef", {}).get("name", "").startswith("shop-secrets") for s in sources)
    generated = [d for d in docs if d["kind"] == "Secret"]
    if rendered.stem == "prod":
        assert not generated, "prod takes shop-secrets from the cluster's secret store"


@pytest.mark.parametrize("part", PARTS, ids=lambda p: p.name)
def test_network_policy_admits_only_the_parts_that_call_it(rendered: Path, part: Part) -> None:
    policy = one(objects(rendered), "NetworkPolicy", f"shop-{part.name}")
    spec = policy["spec"]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": part.name}
    assert set(spec["policyTypes"]) == {"Ingress", "Egress"}
    admitted = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec["ingress"]
        for peer in rule["from"]
        if "podSelector" in peer
    }
    assert admitted == {p.name for p in PARTS if part.name in p.calls}
    reached = {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
        for rule in spec["egress"]
        for peer in rule.get("to", ())
        if "podSelector" in peer
    }
    assert reached == set(part.calls)
    from_anywhere = any("namespaceSelector" in peer for rule in spec["ingress"] for peer in rule["from"])
    assert from_anywhere == (part is GATEWAY or part.name == "realtime"), (
        "only the ingress's backends face out"
    )


def test_namespace_denies_by_default(rendered: Path) -> None:
    deny = one(objects(rendered), "NetworkPolicy", "shop-default-deny")
    assert deny["spec"]["podSelector"] == {} and set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}


def test_ingress_sends_socketio_to_realtime_and_the_rest_to_the_gateway(rendered: Path) -> None:
    ingress = one(objects(rendered), "Ingress", "shop")
    paths = {p["path"]: p["backend"]["service"]["name"] for p in ingress["spec"]["rules"][0]["http"]["paths"]}
    assert paths == {"/socket.io/": "shop-realtime", "/": "shop-gateway"}
    timeout = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-read-timeout"]
    assert int(timeout) >= 3600, "a websocket must outlive the proxy's idle timeout"


def test_catalog_is_told_where_images_live_and_its_keys_are_secrets(rendered: Path) -> None:
    from services.catalog.settings import CatalogSettings

    docs = objects(rendered)
    pod = one(docs, "Deployment", "shop-catalog")["spec"]["template"]["spec"]
    main = pod["containers"][0]
    maps = [s["configMapRef"]["name"] for s in main["envFrom"] if "configMapRef" in s]
    media = one(docs, "ConfigMap", next(m for m in maps if m.startswith("shop-media")))["data"]
    # every storage setting catalog reads but the keys, each one it knows
    assert set(media) == {"MEDIA_S3_ENDPOINT", "MEDIA_S3_BUCKET", "MEDIA_S3_REGION", "MEDIA_PUBLIC_URL"}
    assert set(media) <= {f.upper() for f in CatalogSettings.model_fields}
    assert media["MEDIA_PUBLIC_URL"].endswith("/media") and media["MEDIA_S3_ENDPOINT"].startswith("http")
    assert not any("MEDIA" in k for d in docs if d["kind"] == "ConfigMap" for k in d["data"] if "KEY" in k)
    assert not {e["name"] for e in main["env"]} & {"MEDIA_S3_ACCESS_KEY", "MEDIA_S3_SECRET_KEY"}
    if rendered.stem == "dev":
        secret = next(d for d in docs if d["kind"] == "Secret")
        assert {"MEDIA_S3_ACCESS_KEY", "MEDIA_S3_SECRET_KEY"} <= set(secret["data"])
    # the other parts are not told
    for part in (p for p in PARTS if p.name != "catalog"):
        sources = one(docs, "Deployment", f"shop-{part.name}")["spec"]["template"]["spec"]["containers"][0]
        assert not any(
            s.get("configMapRef", {}).get("name", "").startswith("shop-media") for s in sources["envFrom"]
        )
    # the storage's port is reachable (HTTPS; dev's in-cluster server on 9000)
    egress = one(docs, "NetworkPolicy", "shop-catalog")["spec"]["egress"]
    ports = {p["port"] for rule in egress if "to" not in rule for p in rule["ports"]}
    assert 443 in ports and (9000 in ports) == (rendered.stem == "dev")
    # an upload past 1 MB is spooled to /tmp while it is read, then decoded whole in memory
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")["emptyDir"]["sizeLimit"]
    max_body = CatalogSettings.model_fields["media_max_bytes"].default
    assert int(tmp.removesuffix("Mi")) * 2**20 >= 10 * max_body
    assert main["resources"]["limits"]["memory"] == "1Gi"
