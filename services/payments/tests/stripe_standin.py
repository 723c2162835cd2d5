"""A small local stand-in of the Stripe API, speaking its wire protocol, for the real SDK to talk to.

Form-encoded bodies with bracketed keys, Bearer auth with the secret key, the
``Idempotency-Key`` header (same key: same answer), Stripe-shaped JSON objects and
error bodies (402 ``card_error`` with the intent inside for a declined card).
Also signs webhooks with Stripe's real scheme.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import secrets
import time
from collections import Counter
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from starlette.responses import JSONResponse

DECLINING = ("pm_card_chargeDeclined", "pm_card_visa_chargeDeclined")


def sign(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value: ``t=<ts>,v1=<hex hmac-sha256 of "t.payload">``."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def webhook_event(type_: str, obj: dict[str, Any]) -> str:
    """A v1 webhook event body as Stripe sends it."""
    return json.dumps(
        {
            "id": "evt_" + secrets.token_hex(12),
            "object": "event",
            "api_version": "2025-01-01",
            "created": int(time.time()),
            "livemode": False,
            "pending_webhooks": 1,
            "type": type_,
            "data": {"object": obj},
        }
    )


def _form(body: bytes) -> dict[str, Any]:
    """Stripe's form encoding: ``metadata[order_id]=x`` becomes ``{"metadata": {"order_id": "x"}}``."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(body.decode(), keep_blank_values=True):
        parts = key.replace("]", "").split("[")
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value
    return out


class StripeStandIn:
    """The state of the stand-in and its FastAPI app; counts every call by route."""

    def __init__(self, *, api_key: str) -> None:
        self.api_key = api_key
        self.intents: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()
        self.idempotency_keys: Counter[str] = Counter()
        self._replies: dict[str, tuple[int, dict[str, Any]]] = {}
        self._lock = asyncio.Lock()
        self.app = self._build()

    def refund_calls(self) -> int:
        return self.calls["POST /v1/refunds"]

    def _build(self) -> FastAPI:
        app = FastAPI()

        @app.middleware("http")
        async def stripe_protocol(request: Request, call_next: Any) -> Any:
            if request.headers.get("authorization") != f"Bearer {self.api_key}":
                return _error(401, "invalid_request_error", None, "Invalid API Key provided.")
            route = request.scope["path"]
            self.calls[f"{request.method} {_route_name(route)}"] += 1
            key = request.headers.get("idempotency-key")
            if request.method != "POST" or key is None:
                return await call_next(request)
            self.idempotency_keys[key] += 1
            async with self._lock:  # serialises concurrent requests with a key, like Stripe's lock
                if key not in self._replies:
                    resp = await call_next(request)
                    body = b"".join([chunk async for chunk in resp.body_iterator])
                    self._replies[key] = (resp.status_code, json.loads(body))
                status, data = self._replies[key]
            return JSONResponse(data, status_code=status, headers={"Idempotent-Replayed": "true"})

        @app.post("/v1/payment_intents")
        async def create(request: Request) -> JSONResponse:
            form = _form(await request.body())
            pi_id = "pi_" + secrets.token_hex(12)
            obj: dict[str, Any] = {
                "id": pi_id,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "status": "requires_payment_method",
                "client_secret": f"{pi_id}_secret_{secrets.token_hex(12)}",
                "metadata": form.get("metadata", {}),
                "latest_charge": None,
                "last_payment_error": None,
                "payment_method": None,
                "livemode": False,
                "created": int(time.time()),
            }
            self.intents[pi_id] = obj
            if form.get("confirm") == "true" and form.get("payment_method"):
                return self._attempt(obj, form["payment_method"])
            return JSONResponse(obj)

        @app.get("/v1/payment_intents/{pi_id}")
        async def retrieve(pi_id: str) -> JSONResponse:
            if pi_id not in self.intents:
                return _missing(pi_id)
            return JSONResponse(self.intents[pi_id])

        @app.post("/v1/payment_intents/{pi_id}/confirm")
        async def confirm(pi_id: str, request: Request) -> JSONResponse:
            form = _form(await request.body())
            if pi_id not in self.intents:
                return _missing(pi_id)
            return self._attempt(self.intents[pi_id], form.get("payment_method") or "")

        @app.post("/v1/refunds")
        async def refund(request: Request) -> JSONResponse:
            form = _form(await request.body())
            obj = self.intents.get(form.get("payment_intent", ""))
            if obj is None or obj["status"] != "succeeded":
                return _error(
                    400, "invalid_request_error", "charge_not_refundable", "This charge cannot be refunded."
                )
            re = {
                "id": "re_" + secrets.token_hex(12),
                "object": "refund",
                "status": "succeeded",
                "amount": int(form.get("amount", obj["amount"])),
                "currency": obj["currency"],
                "payment_intent": obj["id"],
                "charge": obj["latest_charge"],
            }
            self.refunds[re["id"]] = re
            return JSONResponse(re)

        return app

    def charge_refunded(self, pi_id: str) -> dict[str, Any]:
        """The Charge object of a ``charge.refunded`` webhook for a paid intent."""
        obj = self.intents[pi_id]
        refunds = [r for r in self.refunds.values() if r["payment_intent"] == pi_id]
        return {
            "id": obj["latest_charge"],
            "object": "charge",
            "amount": obj["amount"],
            "amount_refunded": obj["amount"],
            "currency": obj["currency"],
            "payment_intent": pi_id,
            "refunded": True,
            "refunds": {"object": "list", "data": refunds},
        }

    def _attempt(self, obj: dict[str, Any], payment_method: str) -> JSONResponse:
        if not payment_method.startswith("pm_"):
            return _error(
                400, "invalid_request_error", "resource_missing", f"No such PaymentMethod: '{payment_method}'"
            )
        charge = "ch_" + secrets.token_hex(12)
        obj["payment_method"] = payment_method
        obj["latest_charge"] = charge
        if payment_method in DECLINING:
            err = {
                "type": "card_error",
                "code": "card_declined",
                "decline_code": "generic_decline",
                "message": "Your card was declined.",
                "charge": charge,
                "payment_method": {"id": payment_method, "object": "payment_method"},
            }
            obj.update(status="requires_payment_method", last_payment_error=err)
            return JSONResponse({"error": {**err, "payment_intent": obj}}, status_code=402)
        obj.update(status="succeeded", last_payment_error=None)
        return JSONResponse(obj)


def _route_name(path: str) -> str:
    parts = path.split("/")
    return "/".join("{id}" if p.startswith(("pi_", "re_")) else p for p in parts)


def _missing(pi_id: str) -> JSONResponse:
    return _error(404, "invalid_request_error", "resource_missing", f"No such payment_intent: '{pi_id}'")


def _error(status: int, type_: str, code: str | None, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": type_, "code": code, "message": message}}, status_code=status)
