"""The gateway's merged OpenAPI document, built offline: ``python -m services.openapi > shop-openapi.json``.

The same merge the gateway does at run time (``gateway.openapi.merge``) over every service's
own document, taken from its app without starting it. Typed clients are generated from this
(``clients/``, ``make client``), and a test holds the merged document to what the gateway and
the services enforce, with no stack running.
"""

from __future__ import annotations

import importlib
import json
import sys
from typing import Any

from gateway.openapi import merge
from gateway.routes import SERVICES, RouteTable


def service_documents() -> dict[str, dict[str, Any]]:
    """Each service's own OpenAPI document, from its app (nothing is started or connected)."""
    docs = {}
    for name in SERVICES:
        app = importlib.import_module(f"services.{name}.app").create_app()
        docs[name] = getattr(app, "fastapi", app).openapi()  # realtime wraps its FastAPI in Socket.IO
    return docs


def document() -> dict[str, Any]:
    return merge(service_documents(), RouteTable(), title="Shop API")


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
