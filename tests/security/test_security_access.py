"""Access rules, walked from the gateway's own route table: REST, internal routes and socket commands.

The walk is generated from ``gateway.routes.ROUTES``, so a route added to the table is
walked by the next run without anyone writing a test for it. Each route and method is
called with no token, a customer's token and an admin's token:

- no token on a U or A route: 401 problem; a customer on an A route: 403 problem;
- a caller the route admits never gets 401 or 403 (nor a 5xx): path parameters are
  filled with real ids of a sandbox made here (or random UUIDs, which answer 404) and
  bodies are empty (``{}``), so whatever else it answers (404, 409, 422), the access
  layer let it through.

``/internal/*`` is never reachable through the gateway, however the path is spelled and
even with the internal credential. Every admin Socket.IO command is refused to guests and
customers with a 403 in its acknowledgement, and nothing changes; the same command from an
admin is performed (the proof that the refusals refused something real).
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from gateway.routes import ROUTES, Route
from libs.common.testing import assert_problem
from tests.e2e.external import ExternalStack
from tests.e2e.shopper import Listener
from tests.e2e.stack import Stack
from tests.security.conftest import Cast, Sandbox

# routes that end the session they are called with get a session of their own
ENDS_THE_SESSION = {("POST", "/auth/logout")}


def _path(route: Route, box: Sandbox, cast: Cast) -> str:
    """The route's pattern with real sandbox ids where the parameter names one, else a random UUID."""
    ids = {
        "category_id": box.category["id"],
        "product_id": box.product["id"],
        "order_id": box.order["id"],
        "user_id": cast.victim.user_id,
    }

    def fill(m: re.Match[str]) -> str:
        name, rest = m.group(1), m.group(2)
        if rest:  # {name:path}: the rest of the path
            return "index.html"
        if name == "id_or_slug":
            return box.category["slug"] if route.pattern.startswith("/categories") else box.product["slug"]
        return ids.get(name, str(uuid.uuid4()))

    return re.sub(r"\{(\w+)(:path)?\}", fill, route.pattern)


async def _call(http: httpx.AsyncClient, method: str, path: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, object] | None = {} if method in ("POST", "PUT", "PATCH") else None
    return await http.request(method, path, headers=headers, json=body)


def _refused(resp: httpx.Response, method: str, status: int, what: str) -> None:
    if method == "HEAD":  # no body to read: the status is the answer
        assert resp.status_code == status, f"{what}: expected {status}, got {resp.status_code}"
    else:
        assert_problem(resp, status)


def _admitted(resp: httpx.Response, what: str) -> None:
    assert resp.status_code not in (401, 403), f"{what}: refused with {resp.status_code}: {resp.text[:300]}"
    assert resp.status_code != 405, f"{what}: the route table offers a method the service does not serve"
    assert resp.status_code < 500, f"{what}: server error {resp.status_code}: {resp.text[:300]}"


async def test_every_route_in_the_table_admits_exactly_its_access_level(cast: Cast) -> None:
    box = await cast.sandbox()
    walked: list[str] = []
    for route in ROUTES:
        path = _path(route, box, cast)
        for method in sorted(route.methods):
            what = f"{method} {path} ({route.access})"
            anonymous = await _call(cast.http, method, path, None)
            if route.access == "P":
                _admitted(anonymous, f"guest {what}")
            else:
                _refused(anonymous, method, 401, f"guest {what}")
            for caller in (cast.user, cast.admin):
                token = caller.token
                if (method, route.pattern) in ENDS_THE_SESSION:
                    token = await caller.another_session()
                resp = await _call(cast.http, method, path, token)
                role = "admin" if caller is cast.admin else "customer"
                if route.access == "A" and caller is cast.user:
                    _refused(resp, method, 403, f"{role} {what}")
                else:
                    _admitted(resp, f"{role} {what}")
            walked.append(f"{method} {route.pattern}")
    assert len(walked) == sum(len(route.methods) for route in ROUTES) == len(set(walked))
    # the callers' own sessions survived the walk: no refusal above was a lost session
    for caller in (cast.user, cast.admin):
        assert (await cast.http.get("/users/me", headers=caller.auth)).status_code == 200


INTERNAL_SPELLINGS = [
    "/internal/carts/{uid}",
    "/internal/carts/{uid}/",
    "/internal",
    "/internal/",
    "//internal/carts/{uid}",
    "/%69nternal/carts/{uid}",
    "/INTERNAL/carts/{uid}",
    "/internal%2Fcarts%2F{uid}",
    "/./internal/carts/{uid}",
    "/cart/%2e%2e/internal/carts/{uid}",
    "/products/..%2Finternal%2Fcarts%2F{uid}",
    "/internal;x/carts/{uid}",
    "/internal/reservations",
    "/internal/reservations/{uid}/release",
]


@pytest.mark.parametrize("spelling", INTERNAL_SPELLINGS)
async def test_internal_routes_are_never_reachable_through_the_gateway(
    cast: Cast, stack: Stack | ExternalStack, spelling: str
) -> None:
    path = spelling.format(uid=cast.user.user_id)
    credentials: dict[str, str] = {**cast.admin.auth}
    if isinstance(stack, Stack):  # even a client that somehow holds the services' own credential
        credentials["X-Internal-Token"] = stack.internal_token
    for method in ("GET", "POST"):
        resp = await cast.http.request(method, path, headers=credentials, json={})
        assert resp.status_code in (400, 404), f"{method} {path}: {resp.status_code} {resp.text[:200]}"
        assert_problem(resp, resp.status_code)
        assert "items" not in resp.json(), "an internal answer leaked through"


async def test_the_internal_route_the_walk_probes_is_real_when_called_directly(
    stack: Stack | ExternalStack, cast: Cast
) -> None:
    """Without this, a 404 above could mean the route had merely moved."""
    if not isinstance(
        stack, Stack
    ):  # an external stack's services are not reachable from here: nothing to show
        return
    async with httpx.AsyncClient(base_url=stack.url("cart"), timeout=10) as direct:
        path = f"/internal/carts/{cast.user.user_id}"
        assert_problem(await direct.get(path), 403)
        resp = await direct.get(path, headers={"X-Internal-Token": stack.internal_token})
        assert resp.status_code == 200 and "items" in resp.json(), resp.text


# ---------------------------------------------------------------- Socket.IO commands


async def _payloads(cast: Cast, box: Sandbox) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """A valid payload per admin command, each aimed at sandbox data so its effect can be seen."""
    spares = []
    for purpose in ("to delete", "to fill"):
        spare = await cast.http.post(
            "/admin/categories",
            headers=cast.admin.auth,
            json={"name": f"Sec spare {purpose} {uuid.uuid4().hex[:8]}"},
        )
        assert spare.status_code == 201, spare.text
        spares.append(spare.json()["id"])
    marks = {
        "category": f"Sec added {uuid.uuid4().hex[:8]}",
        "renamed": f"Sec renamed {uuid.uuid4().hex[:8]}",
        "to delete": spares[0],
        "to fill": spares[1],
    }
    return {
        "category:add": {"name": marks["category"]},
        "category:update": {"id": box.category["id"], "name": marks["renamed"]},
        "category:delete": {"id": marks["to delete"]},
        "product:add": {
            "name": "Sec socket lamp",
            "price": 1200,
            "sku": f"SEC-ADD-{uuid.uuid4().hex[:8]}",
            "stock": 3,
            "category_id": marks["to fill"],
        },
        "product:update": {"id": box.product["id"], "price": box.product["price"] + 1},
        "product:delete": {"id": box.product["id"]},
        "order:updateStatus": {"order_id": box.order["id"], "status": "cancelled", "reason": "security walk"},
    }, marks


async def _catalog_state(cast: Cast, box: Sandbox, marks: dict[str, Any]) -> dict[str, Any]:
    """What the commands would change, as a customer sees it over REST."""
    http, auth = cast.http, cast.user.auth
    flat = (await http.get("/categories", params={"flat": "true"})).json()
    names = {c["name"] for c in flat}
    product = await http.get(f"/products/{box.product['id']}")
    filled = await http.get("/products", params={"category": marks["to fill"]})
    return {
        "added category": marks["category"] in names,
        "sandbox category name": next(c["name"] for c in flat if c["id"] == box.category["id"]),
        "category to delete": any(c["id"] == marks["to delete"] for c in flat),
        "added product": filled.status_code == 200 and filled.json()["total"] > 0,
        "sandbox product": product.json().get("price") if product.status_code == 200 else None,
        "order status": (await http.get(f"/orders/{box.order['id']}", headers=auth)).json()["status"],
    }


async def test_admin_socket_commands_are_refused_to_guests_and_customers(
    stack: Stack | ExternalStack, cast: Cast
) -> None:
    box = await cast.sandbox()
    commands, marks = await _payloads(cast, box)
    before = await _catalog_state(cast, box, marks)
    assert before["category to delete"] and not before["added category"] and not before["added product"]
    assert before["order status"] == "pending_payment" and before["sandbox product"] == box.product["price"]
    for who, token in (("guest", None), ("customer", cast.user.token)):
        listener = await Listener(stack.gateway, token).connect()
        try:
            for name, payload in commands.items():
                ack = await listener.command(name, payload)
                assert ack.get("ok") is False and ack["error"]["status"] == 403, f"{who} {name}: {ack}"
        finally:
            await listener.close()
    assert await _catalog_state(cast, box, marks) == before, "a refused command changed something"

    # the same commands from an admin are performed: the refusals above refused something real
    console = await Listener(stack.gateway, cast.admin.token).connect()
    try:
        for name, payload in commands.items():
            ack = await console.command(name, payload)
            assert ack.get("ok") is True, f"admin {name}: {ack}"
    finally:
        await console.close()
    after = await _catalog_state(cast, box, marks)
    assert after == {
        "added category": True,
        "sandbox category name": marks["renamed"],
        "category to delete": False,
        "added product": True,
        "sandbox product": None,
        "order status": "cancelled",
    }, after
