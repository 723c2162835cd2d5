"""Stand-ins of catalog and cart for the orders tests: they implement exactly the internal
contracts orders calls (those services are written by other teams; cross-service tests with the
real ones come later). Named uniquely so that tests can import it whatever else is on sys.path."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from fastapi import FastAPI, Header, Request
from starlette.responses import JSONResponse

TOKEN = "orders-test-internal-token"
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "12 Analytical Row",
    "city": "London",
    "postal_code": "N1 9GU",
    "country": "GB",
}


class CatalogStandIn:
    """Catalog's reservation contract: all-or-nothing stock in memory, idempotent on order_id; a release
    is final (a later reservation under that order id replays ``status: released``)."""

    def __init__(self) -> None:
        self.products: dict[str, dict[str, Any]] = {}
        self.reservations: dict[str, dict[str, Any]] = {}
        self.reserve_calls: list[str] = []
        self.release_calls: list[str] = []
        self.delay = 0.0  # seconds to sit on an answer after reserving (a slow catalog)
        self.down = False  # answer 503 to everything (catalog unreachable)
        self._lock = asyncio.Lock()

    def add_product(
        self, *, name: str = "Widget", price: int = 1250, stock: int = 10, currency: str = "EUR"
    ) -> str:
        pid = str(uuid.uuid4())
        self.products[pid] = {"name": name, "price": price, "stock": stock, "currency": currency}
        return pid

    @staticmethod
    def variant_of(pid: str) -> str:
        """The id of a stand-in product's one variant."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"variant:{pid}"))

    def stock(self, pid: str) -> int:
        return int(self.products[pid]["stock"])

    def held(self, order_id: str) -> bool:
        """Whether stock is reserved under ``order_id`` right now."""
        return self.reservations.get(order_id, {}).get("status") == "reserved"

    def app(self) -> FastAPI:
        app = FastAPI()

        def refuse(token: str | None) -> JSONResponse | None:
            if self.down:
                return JSONResponse({"status": 503, "title": "Down", "detail": "down"}, status_code=503)
            if token != TOKEN:
                return JSONResponse(
                    {"status": 403, "title": "Forbidden", "detail": "internal"}, status_code=403
                )
            return None

        @app.post("/internal/reservations")
        async def reserve(request: Request, x_internal_token: str | None = Header(None)) -> JSONResponse:
            if (refused := refuse(x_internal_token)) is not None:
                return refused
            body = await request.json()
            order_id = body["order_id"]
            self.reserve_calls.append(order_id)
            async with self._lock:
                if order_id in self.reservations:
                    return JSONResponse(self.reservations[order_id], status_code=200)
                wanted = [(i["product_id"], int(i["quantity"])) for i in body["items"]]
                unknown = [pid for pid, _ in wanted if pid not in self.products]
                if unknown:
                    return JSONResponse(
                        {"status": 422, "title": "Unknown products", "detail": "unknown", "unknown": unknown},
                        status_code=422,
                    )
                short = [
                    {"product_id": pid, "requested": qty, "available": self.stock(pid)}
                    for pid, qty in wanted
                    if self.stock(pid) < qty
                ]
                if short:
                    return JSONResponse(
                        {"status": 409, "title": "Insufficient stock", "detail": "short", "short": short},
                        status_code=409,
                        media_type="application/problem+json",
                    )
                for pid, qty in wanted:
                    self.products[pid]["stock"] -= qty
                answer = {
                    "order_id": order_id,
                    "status": "reserved",
                    "currency": self.products[wanted[0][0]]["currency"],
                    "items": [
                        {
                            "product_id": pid,
                            # each stand-in product is sold as one variant, as catalog names it
                            "variant_id": self.variant_of(pid),
                            "sku": f"SKU-{pid[:8]}",
                            "title": "Default",
                            "name": self.products[pid]["name"],
                            "unit_price": self.products[pid]["price"],
                            "currency": self.products[pid]["currency"],
                            "quantity": qty,
                        }
                        for pid, qty in wanted
                    ],
                }
                self.reservations[order_id] = answer
            if self.delay:
                await asyncio.sleep(self.delay)
            return JSONResponse(answer, status_code=201)

        @app.post("/internal/reservations/{order_id}/release")
        async def release(order_id: str, x_internal_token: str | None = Header(None)) -> JSONResponse:
            if (refused := refuse(x_internal_token)) is not None:
                return refused
            self.release_calls.append(order_id)
            async with self._lock:
                # like catalog: released once, and an order id never seen gets a tombstone
                held = self.reservations.get(order_id) or {
                    "order_id": order_id,
                    "currency": "XXX",
                    "items": [],
                }
                if held.get("status") != "released":
                    for item in held["items"]:
                        self.products[item["product_id"]]["stock"] += item["quantity"]
                self.reservations[order_id] = {**held, "status": "released"}
            return JSONResponse(self.reservations[order_id])

        return app


class CartStandIn:
    """Cart's internal contract: GET /internal/carts/{user_id}."""

    def __init__(self) -> None:
        self.carts: dict[str, list[dict[str, Any]]] = {}

    def put(self, user_id: uuid.UUID, *items: tuple[str, int]) -> None:
        self.carts[str(user_id)] = [
            {
                "id": str(uuid.uuid4()),
                "product_id": pid,
                "quantity": qty,
                "name": "x",
                "unit_price": 1,
                "line_total": qty,
            }
            for pid, qty in items
        ]

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.get("/internal/carts/{user_id}")
        async def cart(user_id: str, x_internal_token: str | None = Header(None)) -> JSONResponse:
            if x_internal_token != TOKEN:
                return JSONResponse(
                    {"status": 403, "title": "Forbidden", "detail": "internal"}, status_code=403
                )
            items = self.carts.get(user_id, [])
            return JSONResponse({"items": items, "item_count": len(items), "subtotal": 0, "currency": "EUR"})

        return app
