"""An integrator's webhook end to end: registered through the gateway, it receives an order's events,
each signed, and checks them with nothing but the standard library (as the README's receiver does)."""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from libs.common.testing import assert_problem, eventually
from libs.common.testing.apps import free_port
from tests.e2e.external import ExternalStack
from tests.e2e.shopper import admin, customer, make_product
from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


class Inbox:
    """A receiver on loopback (standard library only) keeping each request with whether it verified."""

    def __init__(self) -> None:
        self.secret = b""
        self.got: list[dict[str, Any]] = []
        self.port = free_port()
        inbox = self

        class Hook(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                header = self.headers.get("Shop-Signature", "")
                fields = [f.split("=", 1) for f in header.split(",") if "=" in f]
                t = next((v for k, v in fields if k == "t"), "")
                mac = hmac.new(inbox.secret, t.encode() + b"." + body, hashlib.sha256).hexdigest()
                fresh = t.isdigit() and abs(time.time() - int(t)) < 300
                ok = fresh and any(k == "v1" and hmac.compare_digest(v, mac) for k, v in fields)
                inbox.got.append(
                    {
                        "verified": ok,
                        "id": self.headers["Shop-Event-Id"],
                        "type": self.headers["Shop-Event-Type"],
                        "envelope": json.loads(body),
                    }
                )
                self.send_response(200 if ok else 400)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Hook)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def inbox(stack: Stack | ExternalStack) -> Iterator[Inbox]:
    if isinstance(stack, ExternalStack):
        pytest.skip("the receiver listens on this machine's loopback, which an external stack cannot reach")
    box = Inbox()
    yield box
    box.close()


async def test_an_integrators_webhook_receives_an_orders_events_signed(
    gw: httpx.AsyncClient, inbox: Inbox
) -> None:
    boss = await admin(gw)
    made = await gw.post(
        "/admin/webhooks",
        headers=boss.auth,
        json={
            "url": f"http://127.0.0.1:{inbox.port}/shop-events",
            "events": ["order.*", "payment.succeeded"],
            "description": f"ERP {uuid.uuid4().hex[:6]}",
        },
    )
    assert made.status_code == 201, made.text
    hook = made.json()
    inbox.secret = hook["secret"].encode()
    try:
        # an integrator's key reads it but cannot change it; a key for the catalog cannot even read it
        keys = await gw.post(
            "/admin/api-keys", headers=boss.auth, json={"name": "ERP", "scopes": ["webhooks:read"]}
        )
        reader = {"Authorization": f"Bearer {keys.json()['key']}"}
        seen = await gw.get(f"/admin/webhooks/{hook['id']}", headers=reader)
        assert seen.status_code == 200 and "secret" not in seen.json(), seen.text
        assert_problem(await gw.delete(f"/admin/webhooks/{hook['id']}", headers=reader), 403)
        keys = await gw.post(
            "/admin/api-keys", headers=boss.auth, json={"name": "ERP setup", "scopes": ["webhooks:write"]}
        )
        writer = {"Authorization": f"Bearer {keys.json()['key']}"}
        own = await gw.post(
            "/admin/webhooks",
            headers=writer,
            json={"url": f"http://127.0.0.1:{inbox.port}/other", "events": ["user.registered"]},
        )
        assert own.status_code == 201 and own.json()["secret"], own.text
        assert (await gw.delete(f"/admin/webhooks/{own.json()['id']}", headers=writer)).status_code == 204
        catalog_key = await gw.post(
            "/admin/api-keys", headers=boss.auth, json={"name": "PIM", "scopes": ["catalog:write"]}
        )
        pim = {"Authorization": f"Bearer {catalog_key.json()['key']}"}
        assert assert_problem(await gw.get("/admin/webhooks", headers=pim), 403)["scope"] == "webhooks:read"
        shopper = await customer(gw, "hooked")
        assert_problem(await gw.get("/admin/webhooks", headers=shopper.auth), 403)
        assert_problem(await gw.get("/admin/webhooks"), 401)

        product = await make_product(gw, boss, stock=5)
        await shopper.add_to_cart(product["id"], 2)
        order = (await shopper.place_order()).json()
        await shopper.pay(order["id"])
        await shopper.wait_status(order["id"], "paid")

        def about_order() -> list[dict[str, Any]]:
            return [g for g in inbox.got if g["envelope"]["data"].get("order_id") == order["id"]]

        async def arrived() -> list[dict[str, Any]]:
            got = about_order()
            types = {g["type"] for g in got}
            assert {"order.created", "payment.succeeded", "order.status_changed"} <= types, types
            return got

        got = await eventually(arrived, timeout=30, interval=0.2)
        assert all(g["verified"] for g in got), "every delivery carries a signature the receiver verifies"
        assert all(g["type"] == g["envelope"]["type"] and g["id"] == g["envelope"]["id"] for g in got)
        assert not [g for g in inbox.got if g["type"].startswith(("product.", "stock.", "category."))]
        paid = [g for g in got if g["type"] == "order.status_changed"]
        assert paid and paid[-1]["envelope"]["data"]["to"] == "paid"

        async def listed() -> list[dict[str, Any]]:
            resp = await gw.get(f"/admin/webhooks/{hook['id']}/deliveries", headers=reader)
            assert resp.status_code == 200, resp.text
            rows = [r for r in resp.json()["items"] if r["event_id"] in {g["id"] for g in got}]
            assert len(rows) == len(got) and all(r["status"] == "succeeded" for r in rows), rows
            return rows

        rows = await eventually(listed, timeout=15, interval=0.2)
        assert all(r["response_code"] == 200 and r["attempts"] == 1 for r in rows)
    finally:
        assert (await gw.delete(f"/admin/webhooks/{hook['id']}", headers=boss.auth)).status_code == 204
