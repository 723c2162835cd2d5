"""The Kubernetes base of the shop (deploy/k8s/base), generated from the registry of parts.

``python scripts/k8s_manifests.py`` rewrites deploy/k8s/base; ``--check`` exits 1 when
the committed files differ from what the registry gives, which a test runs, so a part
added to libs/common/parts.py cannot be forgotten in the manifests. The overlays
(deploy/k8s/overlays/dev and prod) are written by hand: they hold what differs between
environments (replicas, resources, image tags, where the secrets come from).

Every part gets a Deployment (probes on /healthz and /readyz, non-root, read-only root
filesystem, its migrations in an init container that takes the same advisory lock as
``migrate`` so replicas starting together apply them once), a Service, a
PodDisruptionBudget, a HorizontalPodAutoscaler (every part keeps its state in
PostgreSQL, Redis or RabbitMQ, so every part is stateless) and a NetworkPolicy that
lets it reach only what DESIGN.md section 1 says it talks to.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from libs.common.parts import GATEWAY, PARTS, Part  # noqa: E402

BASE = ROOT / "deploy" / "k8s" / "base"
APP = "shop"
UID = 10001
# the external servers every part may need, by port: PostgreSQL, Redis, RabbitMQ
INFRA_PORTS = {"postgres": 5432, "redis": 6379, "amqp": 5672}
# an OpenTelemetry collector's OTLP/HTTP port: every part exports its spans there once
# OTEL_EXPORTER_OTLP_ENDPOINT is set (README: Traces); nothing is sent while it is not
OTLP_HTTP_PORT = 4318
# beyond the cluster: SMTP for mail, HTTPS for Stripe, webhooks and catalog's object storage (S3)
OUTBOUND = {
    "auth": (587, 465, 25),
    "payments": (443,),
    "notifications": (587, 465, 25, 443, 80),
    "catalog": (443,),
}
# where catalog keeps product images (services/catalog/settings.py): S3-compatible storage, the bucket
# private, images served through the gateway's /media/ (a CDN may front it). Its own ConfigMap, so
# an overlay merges its endpoint in; the keys MEDIA_S3_ACCESS_KEY and MEDIA_S3_SECRET_KEY come from
# shop-secrets (left out, the S3 client's own chain is asked: AWS_* variables, a node's instance role)
MEDIA_PART = "catalog"
MEDIA_CONFIG = {
    "MEDIA_S3_ENDPOINT": "https://s3.us-east-1.amazonaws.com",
    "MEDIA_S3_BUCKET": "shop-media",
    "MEDIA_S3_REGION": "us-east-1",
    "MEDIA_PUBLIC_URL": "https://shop.example.com/media",
}
# catalog decodes an upload whole: up to MEDIA_MAX_PIXELS (40 M) is 120 MB as RGB, held twice while it
# is copied without its metadata; and an upload past 1 MB is spooled to /tmp while it is read
RESOURCES: dict[str, dict[str, dict[str, str]]] = {
    MEDIA_PART: {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}},
}
TMP_SIZE = {MEDIA_PART: "256Mi"}
# the Socket.IO endpoint the ingress sends straight to realtime (the gateway relay is for one-host runs)
SOCKET_PART = "realtime"


def name_of(part: Part) -> str:
    return f"{APP}-{part.name}"


def labels(part: Part) -> dict[str, str]:
    return {"app.kubernetes.io/name": part.name, "app.kubernetes.io/part-of": APP}


def selector(part: Part) -> dict[str, str]:
    return {"app.kubernetes.io/name": part.name}


def peers_env() -> list[dict[str, str]]:
    """Where every part reaches the others: their Services, not 127.0.0.1."""
    env = [{"name": p.url_env, "value": f"http://{name_of(p)}:{p.port}"} for p in PARTS if p is not GATEWAY]
    auth = next(p for p in PARTS if p.name == "auth")
    env.append({"name": "JWKS_URL", "value": f"http://{name_of(auth)}:{auth.port}/.well-known/jwks.json"})
    return env


def security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": UID,
        "runAsGroup": UID,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container(part: Part, *, name: str, args: list[str] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {
        "name": name,
        "image": APP,  # one image holds every part; the command picks one
        "imagePullPolicy": "Always",
        "command": ["python", "-m", part.module, *(args or [])],
        "env": [
            {"name": "PORT", "value": str(part.port)},
            {"name": "HOST", "value": "0.0.0.0"},
            *peers_env(),
        ],
        "envFrom": [
            {"configMapRef": {"name": f"{APP}-config"}},
            *([{"configMapRef": {"name": f"{APP}-media"}}] if part.name == MEDIA_PART else []),
            {"secretRef": {"name": f"{APP}-secrets"}},
        ],
        "securityContext": security_context(),
        "resources": RESOURCES.get(
            part.name,
            {"requests": {"cpu": "100m", "memory": "160Mi"}, "limits": {"cpu": "1", "memory": "384Mi"}},
        ),
        # the root filesystem is read-only: Python, asyncpg and uvicorn still need a scratch /tmp
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108
    }
    return c


def deployment(part: Part) -> dict[str, Any]:
    main = container(part, name=part.name)
    main["ports"] = [{"name": "http", "containerPort": part.port}]
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 3}
    main["startupProbe"] = {**probe, "failureThreshold": 30, "periodSeconds": 2}
    main["livenessProbe"] = {**probe, "failureThreshold": 3}
    main["readinessProbe"] = {
        "httpGet": {"path": "/readyz", "port": "http"},
        "periodSeconds": 5,
        "timeoutSeconds": 3,
        "failureThreshold": 2,
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": UID,
            "fsGroup": UID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "terminationGracePeriodSeconds": 30,
        "containers": [main],
        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": TMP_SIZE.get(part.name, "64Mi")}}],
    }
    if part.database:
        spec["initContainers"] = [container(part, name="migrate", args=["migrate"])]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name_of(part), "labels": labels(part)},
        "spec": {
            "replicas": 2,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(part)},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {"metadata": {"labels": labels(part)}, "spec": spec},
        },
    }


def service(part: Part) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name_of(part), "labels": labels(part)},
        "spec": {
            "selector": selector(part),
            "ports": [{"name": "http", "port": part.port, "targetPort": "http"}],
        },
    }


def disruption_budget(part: Part) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": name_of(part), "labels": labels(part)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(part)}},
    }


def autoscaler(part: Part) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": name_of(part), "labels": labels(part)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name_of(part)},
            "minReplicas": 2,
            "maxReplicas": 10,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 70}},
                }
            ],
        },
    }


def callers(part: Part) -> list[Part]:
    return [p for p in PARTS if part.name in p.calls]


def network_policy(part: Part) -> dict[str, Any]:
    """Ingress from the parts that call it (the gateway from the ingress controller); egress to what it calls."""
    if part is GATEWAY or part.name == SOCKET_PART:
        # reached from outside the cluster through the ingress controller, whatever namespace it runs in
        from_: list[dict[str, Any]] = [{"namespaceSelector": {}}]
    else:
        from_ = []
    from_ += [{"podSelector": {"matchLabels": selector(p)}} for p in callers(part)]
    ingress = [{"from": from_, "ports": [{"protocol": "TCP", "port": part.port}]}] if from_ else []
    dns = {"ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}
    egress: list[dict[str, Any]] = [dns]
    for peer in (p for p in PARTS if p.name in part.calls):
        egress.append(
            {
                "to": [{"podSelector": {"matchLabels": selector(peer)}}],
                "ports": [{"protocol": "TCP", "port": peer.port}],
            }
        )
    infra = [INFRA_PORTS["redis"]]
    if part.database:
        infra.append(INFRA_PORTS["postgres"])
    if part.bus:
        infra.append(INFRA_PORTS["amqp"])
    infra += OUTBOUND.get(part.name, ())
    infra.append(OTLP_HTTP_PORT)
    # PostgreSQL, Redis and RabbitMQ are outside the cluster (their URLs come from the Secret):
    # the policy names their ports; an operator who knows their addresses narrows `to` in an overlay
    egress.append({"ports": [{"protocol": "TCP", "port": port} for port in sorted(set(infra))]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name_of(part), "labels": labels(part)},
        "spec": {
            "podSelector": {"matchLabels": selector(part)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def default_deny() -> dict[str, Any]:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{APP}-default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]},
    }


def ingress() -> dict[str, Any]:
    """The public entry: Socket.IO straight to realtime (websocket transport), everything else to the gateway."""
    realtime = next(p for p in PARTS if p.name == SOCKET_PART)

    def path(p: str, part: Part) -> dict[str, Any]:
        return {
            "path": p,
            "pathType": "Prefix",
            "backend": {"service": {"name": name_of(part), "port": {"number": part.port}}},
        }

    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "Ingress",
        "metadata": {
            "name": APP,
            "annotations": {
                # websockets live long: no idle cut at 60 s
                "nginx.ingress.kubernetes.io/proxy-read-timeout": "3600",
                "nginx.ingress.kubernetes.io/proxy-send-timeout": "3600",
                "nginx.ingress.kubernetes.io/proxy-body-size": "12m",
            },
        },
        "spec": {
            "ingressClassName": "nginx",
            "tls": [{"hosts": ["shop.example.com"], "secretName": f"{APP}-tls"}],
            "rules": [
                {
                    "host": "shop.example.com",
                    "http": {"paths": [path("/socket.io/", realtime), path("/", GATEWAY)]},
                }
            ],
        },
    }


def config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{APP}-config"},
        "data": {"ENV": "prod", "LOG_JSON": "true", "LOG_LEVEL": "INFO", "EVENT_BUS": "amqp"},
    }


def media_config_map() -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{APP}-media"},
        "data": dict(MEDIA_CONFIG),
    }


def documents() -> dict[str, list[dict[str, Any]]]:
    """File name -> the objects in it."""
    files: dict[str, list[dict[str, Any]]] = {
        "config.yaml": [config_map(), media_config_map()],
        "network-default-deny.yaml": [default_deny()],
        "ingress.yaml": [ingress()],
    }
    for part in PARTS:
        files[f"{part.name}.yaml"] = [
            deployment(part),
            service(part),
            disruption_budget(part),
            autoscaler(part),
            network_policy(part),
        ]
    files["kustomization.yaml"] = [
        {
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "labels": [{"pairs": {"app.kubernetes.io/part-of": APP}}],
            "resources": sorted(f for f in files if f != "kustomization.yaml"),
        }
    ]
    return files


HEADER = "# Generated by scripts/k8s_manifests.py from libs/common/parts.py: edit those, not this file.\n"


def render() -> dict[str, str]:
    return {
        name: HEADER + yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
        for name, docs in documents().items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if deploy/k8s/base is not what the registry gives"
    )
    args = parser.parse_args(argv)
    wanted = render()
    present = {p.name for p in BASE.glob("*.yaml")} if BASE.exists() else set()
    stale = sorted(present - set(wanted))
    changed = sorted(
        n
        for n, text in wanted.items()
        if not (BASE / n).exists() or (BASE / n).read_text(encoding="utf-8") != text
    )
    if args.check:
        if stale or changed:
            print(
                f"deploy/k8s/base is out of date ({', '.join(changed + stale)}): "
                "run python scripts/k8s_manifests.py",
                file=sys.stderr,
            )
            return 1
        return 0
    BASE.mkdir(parents=True, exist_ok=True)
    for n in stale:
        (BASE / n).unlink()
    for n, text in wanted.items():
        (BASE / n).write_text(text, encoding="utf-8")
    print(f"deploy/k8s/base: {len(changed)} written, {len(stale)} removed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
