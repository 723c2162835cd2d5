"""One OpenAPI document for the whole shop: every upstream's, reduced to what the gateway routes.

Each upstream's ``/openapi.json`` is fetched (concurrently, cached a few seconds); only
operations the route table serves under the same method and service are kept, so
``/internal``, health and metrics routes never show. Schemas with the same name but a
different body in two services are renamed ``<Service><Name>`` in the second one.

What an SDK generator reads is made to match what the gateway does: every problem body
refers to one ``Problem`` schema; a public route whose service also reads an optional
token says so (``security: [{}, bearer]``, anonymous allowed); operation ids are unique
across services (a clash is prefixed with the service's name).
"""

from __future__ import annotations

import asyncio
import copy
import time
from typing import Any

import httpx

from gateway.routes import RouteTable
from libs.common.errors import PROBLEM_SCHEMA
from libs.common.logging import get_logger

log = get_logger(__name__)
METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
REF_PREFIX = "#/components/schemas/"
PROBLEM = "Problem"


class OpenApiAggregator:
    def __init__(
        self,
        *,
        upstreams: dict[str, str],
        table: RouteTable,
        http: httpx.AsyncClient,
        ttl: float,
        title: str = "Shop API",
    ) -> None:
        self.upstreams = upstreams
        self.table = table
        self.http = http
        self.ttl = ttl
        self.title = title
        self._doc: dict[str, Any] | None = None
        self._at = 0.0
        self._lock = asyncio.Lock()

    async def document(self) -> dict[str, Any]:
        async with self._lock:
            if self._doc is None or time.monotonic() - self._at > self.ttl:
                docs = await asyncio.gather(*(self._fetch(name, url) for name, url in self.upstreams.items()))
                self._doc = merge(
                    {name: doc for name, doc in zip(self.upstreams, docs, strict=True) if doc is not None},
                    self.table,
                    title=self.title,
                )
                self._at = time.monotonic()
            return self._doc

    async def _fetch(self, name: str, base: str) -> dict[str, Any] | None:
        try:
            resp = await self.http.get(f"{base}/openapi.json", timeout=3)
            resp.raise_for_status()
            doc = resp.json()
            return doc if isinstance(doc, dict) else None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("openapi_fetch_failed", service=name, error=type(exc).__name__)
            return None


def merge(docs: dict[str, dict[str, Any]], table: RouteTable, *, title: str) -> dict[str, Any]:
    """The merged document of ``{service: openapi document}``."""
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    security: dict[str, Any] = {}
    operation_ids: set[str] = set()
    for service, original in docs.items():
        doc = copy.deepcopy(original)
        components = doc.get("components", {})
        own = components.get("schemas", {})
        renames: dict[str, str] = {}
        for name, body in own.items():
            if name in schemas and schemas[name] != body:
                target, n = f"{service.capitalize()}{name}", 1
                while target in schemas or target in own or target in renames.values():
                    n += 1
                    target = f"{service.capitalize()}{name}{n}"
                renames[name] = target
        if renames:
            doc = _rename_refs(doc, renames)
            components = doc.get("components", {})
        for name, body in components.get("schemas", {}).items():
            schemas[renames.get(name, name)] = body
        security.update(components.get("securitySchemes", {}))
        for path, item in doc.get("paths", {}).items():
            probe = _probe(path)
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                route = table.match(method.upper(), probe).route
                if route is None or route.service != service:
                    continue
                op.setdefault("tags", [service])
                if route.access == "P" and op.get("security"):
                    op["security"] = [{}, *[s for s in op["security"] if s]]  # a token is optional here
                if "operationId" in op:
                    if op["operationId"] in operation_ids:
                        op["operationId"] = service + op["operationId"][:1].upper() + op["operationId"][1:]
                    operation_ids.add(op["operationId"])
                paths.setdefault(path, {})[method] = _refer_problems(op)
    out: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": "1.0.0",
            "description": "Every service of the shop, as the gateway serves it.",
        },
        "paths": dict(sorted(paths.items())),
    }
    # named even when nothing refers to it yet: clients type their error handling with it
    schemas[PROBLEM] = copy.deepcopy(PROBLEM_SCHEMA)
    if schemas or security:
        out["components"] = {}
        if schemas:
            out["components"]["schemas"] = schemas
        if security:
            out["components"]["securitySchemes"] = security
    return out


def _probe(template: str) -> str:
    # a concrete path for a template like /products/{id}, to look it up in the table
    out, depth = [], 0
    for ch in template:
        if ch == "{":
            depth += 1
            if depth == 1:
                out.append("x")
        elif ch == "}":
            depth -= 1
        elif depth == 0:
            out.append(ch)
    return "".join(out)


def _refer_problems(node: Any) -> Any:
    """Each inline copy of the problem schema replaced by a reference to the one ``Problem``."""
    if isinstance(node, dict):
        if node == PROBLEM_SCHEMA:
            return {"$ref": REF_PREFIX + PROBLEM}
        return {key: _refer_problems(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_refer_problems(v) for v in node]
    return node


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(REF_PREFIX):
                name = value[len(REF_PREFIX) :]
                out[key] = REF_PREFIX + renames.get(name, name)
            else:
                out[key] = _rename_refs(value, renames)
        return out
    if isinstance(node, list):
        return [_rename_refs(v, renames) for v in node]
    return node
