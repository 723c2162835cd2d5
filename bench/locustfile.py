"""The shop as its customers and admins use it: the load profile behind ``make load``.

Three kinds of user, each acting about once a second (a person clicks every few seconds, so one
simulated user stands for several people):

- ``Guest``: browses and searches without signing in: the category tree, product lists with a
  category, price band, stock filter, sort and page, lists with facets and an option filter
  (``option.Size=M``), a product's page, a text search.
- ``Customer``: signed in; keeps a cart (add, change the quantity, remove, look) and a wishlist,
  and checks out: the address book, a quote, ``POST /orders`` from the address book, then pays
  with the payment provider's test card (``pm_card_visa``, which the stand-in and Stripe's test
  mode both accept) and verifies, as the storefront does.
- ``Admin`` (a fixed few): signed in on Socket.IO through the gateway like the console, looking
  at the recent orders now and then; each ``order:created`` is timed from the customer's
  ``POST /orders`` to its arrival (``socket order:created``), and one that does not come within
  ``MISSED_AFTER`` seconds is a failure.

The weights are set so that the requests the shop serves split about 70% browsing and search,
20% cart and wishlist, 10% checkout and payment; ``bench/load.py`` prints the split it got.
Every request is named ``<category> <METHOD> <path shape>``, the category being the part of the mix.

What the users need (the gateway's URL, customers' tokens, the admins' credentials, which
products are in stock, the catalog's categories, options and words, an address the shop ships
to) comes from a plan file written by ``bench/load.py`` (``LOAD_PLAN``). ``locust -f
bench/locustfile.py`` with the same ``LOAD_PLAN`` runs it in locust's own UI.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from typing import Any

import gevent
import socketio
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser

if not os.environ.get("LOAD_PLAN"):
    raise SystemExit("LOAD_PLAN names the plan bench/load.py writes (python bench/load.py --help)")
with open(os.environ["LOAD_PLAN"]) as plan_file:
    PLAN: dict[str, Any] = json.load(plan_file)
# LOAD_TOUR=1: every user first does each of its actions once, in order, then the weighted mix
# (the end-to-end test's short run covers the whole profile that way)
TOUR = os.environ.get("LOAD_TOUR") == "1"
MISSED_AFTER = 10.0  # seconds an order:created may take to reach an admin's socket
REFRESH_AFTER = 600.0  # access tokens live 15 minutes: customers renew theirs after 10
# a tour runs every action once in a short test run, so its users think less between them
THINK = between(0.1, 0.3) if TOUR else between(0.5, 1.5)

# customers registered beforehand, handed out one per Customer user
_accounts = list(PLAN.get("customers", []))
_accounts_lock = threading.Lock()


class Choice:
    """Weighted actions, after a tour of every one of them when ``LOAD_TOUR`` is set."""

    def __init__(self, actions: dict[str, int]) -> None:
        self.names, self.weights = list(actions), list(actions.values())
        self.tour = list(self.names) if TOUR else []

    def next(self) -> str:
        return self.tour.pop(0) if self.tour else random.choices(self.names, self.weights)[0]


# --- browsing ------------------------------------------------------------------------------------

# price bands as a storefront offers them (minor units)
PRICE_BANDS = [(0, 2500), (2500, 5000), (5000, 10000), (10000, 25000), (25000, 100000)]
SORTS = ["price_asc", "price_desc", "newest", "name"]


class Guest(FastHttpUser):
    """Browses and searches, never signed in."""

    weight = 3
    wait_time = THINK
    # one request each
    ACTIONS = {"categories": 1, "list_products": 4, "facets": 2, "product": 4, "search": 3}

    def on_start(self) -> None:
        self.choice = Choice(self.ACTIONS)

    @task
    def act(self) -> None:
        getattr(self, self.choice.next())()

    def categories(self) -> None:
        self.client.get("/categories", name="browse GET /categories")

    def list_products(self) -> None:
        lo, hi = random.choice(PRICE_BANDS)
        query = f"category={random.choice(PLAN['categories'])}&price_min={lo}&price_max={hi}"
        if random.random() < 0.5:
            query += "&in_stock=true"
        query += f"&sort={random.choice(SORTS)}&page={random.choice([1, 1, 1, 2, 3])}"
        self.client.get(f"/products?{query}", name="browse GET /products?category&price&sort&page")

    def facets(self) -> None:
        query = f"category={random.choice(PLAN['categories'])}&facets=true"
        options = PLAN.get("options") or {}
        if options and random.random() < 0.7:
            name = random.choice(sorted(options))
            query += f"&option.{name}={random.choice(options[name])}"
        self.client.get(f"/products?{query}", name="browse GET /products?category&facets&option")

    def product(self) -> None:
        product = random.choice(PLAN["products"])
        key = product["slug"] if random.random() < 0.5 else product["id"]
        self.client.get(f"/products/{key}", name="browse GET /products/{id_or_slug}")

    def search(self) -> None:
        words = random.sample(PLAN["words"], k=random.choice([1, 1, 2]))
        self.client.get(f"/products?q={'+'.join(words)}", name="browse GET /products?q")


# --- signed-in customers -------------------------------------------------------------------------


def answer(resp: Any) -> dict[str, Any]:
    """The JSON of a successful answer; {} for a failure (already counted as one by locust)."""
    return resp.json() if resp.status_code < 400 else {}


def in_stock_variant() -> dict[str, Any]:
    variant: dict[str, Any] = random.choice(random.choice(PLAN["products"])["variants"])
    return variant


class Customer(FastHttpUser):
    """Keeps a cart and a wishlist, checks out and pays."""

    weight = 1
    wait_time = THINK
    # one request each but checkout, which is about six (address book, quote, order, pay, verify,
    # the order's page): weighted for the 20% / 10% split of requests
    ACTIONS = {
        "view_cart": 3,
        "add_line": 3,
        "change_quantity": 2,
        "remove_line": 1,
        "view_wishlist": 1,
        "wish": 1,
        "unwish": 1,
        "checkout": 1,
    }

    def on_start(self) -> None:
        self.choice = Choice(self.ACTIONS)
        self.lines: dict[str, dict[str, Any]] = {}  # cart item id -> {variant, quantity, stock}
        self.wishes: list[str] = []
        with _accounts_lock:
            account = _accounts.pop() if _accounts else None
        if account is None:  # more customers than were registered beforehand: sign up now
            account = self.sign_up()
        self.account = account
        self.signed_in_at = time.monotonic()

    def on_stop(self) -> None:
        # a step with fewer users than the last hands the account to whoever starts next
        if getattr(self, "account", None) is not None:
            with _accounts_lock:
                _accounts.append(self.account)

    def sign_up(self) -> dict[str, Any]:
        email = f"load-{uuid.uuid4().hex[:12]}@load.shop.test"
        body = {"email": email, "password": "Load-customer-1", "name": "Load Customer"}
        with self.client.post("/auth/register", json=body, name="setup POST /auth/register") as resp:
            tokens = resp.json()
        account = {
            "email": email,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
        }
        headers = {"Authorization": f"Bearer {account['access_token']}"}
        with self.client.post(
            "/users/me/addresses",
            json=PLAN["address"],
            headers=headers,
            name="setup POST /users/me/addresses",
        ) as resp:
            account["address_id"] = resp.json()["id"]
        return account

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account['access_token']}"}

    @task
    def act(self) -> None:
        if time.monotonic() - self.signed_in_at > REFRESH_AFTER:
            with self.client.post(
                "/auth/refresh",
                json={"refresh_token": self.account["refresh_token"]},
                name="auth POST /auth/refresh",
            ) as resp:
                body = resp.json()
            self.account = {**self.account, **body}
            self.signed_in_at = time.monotonic()
        getattr(self, self.choice.next())()

    # the cart: each call below is one request
    def view_cart(self) -> None:
        self.client.get("/cart", headers=self.auth, name="cart GET /cart")

    def add_line(self, category: str = "cart") -> None:
        variant = in_stock_variant()
        with self.client.post(
            "/cart",
            json={"variant_id": variant["id"], "quantity": 1},
            headers=self.auth,
            name=f"{category} POST /cart",
        ) as resp:
            cart = answer(resp)
        for line in cart.get("items", []):
            if line["variant_id"] == variant["id"]:
                self.lines[line["id"]] = {"quantity": line["quantity"], "stock": variant["stock"]}

    def change_quantity(self) -> None:
        if not self.lines:
            return self.add_line()
        item_id, line = random.choice(list(self.lines.items()))
        quantity = random.randint(1, max(1, min(3, line["stock"] // 4)))
        with self.client.put(
            f"/cart/{item_id}",
            json={"quantity": quantity},
            headers=self.auth,
            name="cart PUT /cart/{item_id}",
        ):
            line["quantity"] = quantity

    def remove_line(self) -> None:
        if not self.lines:
            return self.add_line()
        item_id = random.choice(list(self.lines))
        self.client.delete(f"/cart/{item_id}", headers=self.auth, name="cart DELETE /cart/{item_id}")
        self.lines.pop(item_id)

    def view_wishlist(self) -> None:
        self.client.get("/wishlist", headers=self.auth, name="cart GET /wishlist")

    def wish(self) -> None:
        product = random.choice(PLAN["products"])
        with self.client.post(
            "/wishlist", json={"product_id": product["id"]}, headers=self.auth, name="cart POST /wishlist"
        ) as resp:
            entry = answer(resp)  # the entry, new (201) or already there (200)
        if entry.get("id") and entry["id"] not in self.wishes:
            self.wishes.append(entry["id"])

    def unwish(self) -> None:
        if not self.wishes:
            return self.wish()
        entry = self.wishes.pop(random.randrange(len(self.wishes)))
        self.client.delete(f"/wishlist/{entry}", headers=self.auth, name="cart DELETE /wishlist/{id}")

    # checkout: what a storefront's checkout pages send, in order
    def checkout(self) -> None:
        if not self.lines:
            self.add_line(category="checkout")
        self.client.get("/users/me/addresses", headers=self.auth, name="checkout GET /users/me/addresses")
        self.client.post(
            "/checkout/quote",
            json={"shipping_address": PLAN["address"]},
            headers=self.auth,
            name="checkout POST /checkout/quote",
        )
        sent = time.perf_counter()
        with self.client.post(
            "/orders",
            json={"address_id": self.account["address_id"]},
            headers={**self.auth, "Idempotency-Key": uuid.uuid4().hex},
            name="checkout POST /orders",
            catch_response=True,
        ) as resp:
            if resp.status_code != 201:
                resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                return
            order_id = resp.json()["id"]
        # the order took the cart's lines (cart hears of it from the order.created event)
        self.lines.clear()
        for watch in WATCHES:
            watch.placed(order_id, sent)
        gevent.sleep(random.uniform(1.0, 2.0))  # the card's details are typed in
        intent = self.pay(order_id)
        if intent is None:
            return
        with self.client.post(
            "/payment/verify",
            json={"payment_intent_id": intent},
            headers=self.auth,
            name="checkout POST /payment/verify",
            catch_response=True,
        ) as resp:
            if resp.status_code == 200 and resp.json().get("status") != "succeeded":
                resp.failure(f"payment {resp.json().get('status')}")
        self.client.get(f"/orders/{order_id}", headers=self.auth, name="checkout GET /orders/{order_id}")

    def pay(self, order_id: str) -> str | None:
        """The payment intent, confirmed with the test card; a 425 (payments has not heard of the
        order yet) is the shop's "come back in a second", retried as a storefront does."""
        for _ in range(5):
            with self.client.post(
                "/payment/checkout",
                json={"order_id": order_id, "payment_method": "pm_card_visa"},
                headers=self.auth,
                name="checkout POST /payment/checkout",
                catch_response=True,
            ) as resp:
                if resp.status_code == 425:
                    resp.success()
                    gevent.sleep(float(resp.headers.get("Retry-After") or 1))
                    continue
                if resp.status_code not in (200, 201):
                    resp.failure(f"{resp.status_code}: {(resp.text or '')[:200]}")
                    return None
                return str(resp.json()["payment_intent_id"])
        return None


# --- admins on sockets ---------------------------------------------------------------------------


class OrderWatch:
    """One admin socket's view of the orders placed: each order:created timed from its POST."""

    def __init__(self, request_event: Any) -> None:
        self.fire = request_event.fire
        self.sent: dict[str, float] = {}  # order id -> when its POST /orders was sent
        self.arrived: dict[str, float] = {}  # an order:created that came before its POST's answer
        self.events: Counter[str] = Counter()

    def placed(self, order_id: str, sent: float) -> None:
        if order_id in self.arrived:
            self.report(self.arrived.pop(order_id) - sent)
        else:
            self.sent[order_id] = sent

    def created(self, order_id: str) -> None:
        now = time.perf_counter()
        if order_id in self.sent:
            self.report(now - self.sent.pop(order_id))
        else:
            self.arrived[order_id] = now

    def report(self, seconds: float, exception: Exception | None = None) -> None:
        self.fire(
            request_type="SOCKET",
            name="socket order:created (POST /orders -> admin)",
            response_time=seconds * 1000,
            response_length=0,
            exception=exception,
            context={},
        )

    def sweep(self) -> None:
        cutoff = time.perf_counter() - MISSED_AFTER
        for order_id, sent in list(self.sent.items()):
            if sent < cutoff:
                del self.sent[order_id]
                self.report(
                    MISSED_AFTER, RuntimeError(f"order:created not received within {MISSED_AFTER:g} s")
                )
        for order_id, arrived in list(self.arrived.items()):
            if arrived < cutoff:  # an order placed by someone else (a shop shared with other users)
                del self.arrived[order_id]


WATCHES: list[OrderWatch] = []
SOCKET_EVENTS: Counter[str] = Counter()  # every event the admins received, by name


class Admin(FastHttpUser):
    """Watches the shop live over Socket.IO, as the console does, and looks at the orders."""

    fixed_count = int(os.environ.get("LOAD_ADMINS", "2")) if PLAN.get("admin") else 0
    wait_time = between(5, 10)

    def on_start(self) -> None:
        creds = PLAN["admin"]
        with self.client.post(
            "/auth/login",
            json={"email": creds["email"], "password": creds["password"]},
            name="setup POST /auth/login",
        ) as resp:
            body = resp.json()
        self.token, self.refresh = body["access_token"], body["refresh_token"]
        self.signed_in_at = time.monotonic()
        self.stopping = False
        self.watch = OrderWatch(self.environment.events.request)
        self.sio = socketio.Client(reconnection=False)
        self.sio.on("*", self.received)
        self.sio.on("disconnect", self.dropped)
        started = time.perf_counter()
        self.sio.connect(PLAN["host"], auth={"token": self.token}, transports=["websocket"], wait_timeout=10)
        self.environment.events.request.fire(
            request_type="SOCKET",
            name="setup socket connect",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=None,
            context={},
        )
        WATCHES.append(self.watch)
        self.sweeper = gevent.spawn(self.sweep)

    def received(self, event: str, data: Any = None) -> None:
        SOCKET_EVENTS[event] += 1
        if event == "order:created" and isinstance(data, dict):
            self.watch.created(str(data.get("data", {}).get("order_id")))

    def dropped(self, reason: Any = None) -> None:
        if not self.stopping:
            self.watch.report(0, RuntimeError(f"the admin's socket was closed ({reason})"))

    def sweep(self) -> None:
        while True:
            gevent.sleep(1)
            self.watch.sweep()

    def on_stop(self) -> None:
        self.stopping = True
        self.sweeper.kill()
        if self.watch in WATCHES:
            WATCHES.remove(self.watch)
        self.sio.disconnect()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @task
    def recent_orders(self) -> None:
        if time.monotonic() - self.signed_in_at > REFRESH_AFTER:
            with self.client.post(
                "/auth/refresh", json={"refresh_token": self.refresh}, name="auth POST /auth/refresh"
            ) as resp:
                body = resp.json()
            self.token, self.refresh = body["access_token"], body["refresh_token"]
            self.signed_in_at = time.monotonic()
            # the socket keeps its place in the rooms with the renewed token (the console does this)
            self.sio.call("auth:refresh", {"token": self.token}, timeout=10)
        self.client.get("/admin/orders?page_size=20", headers=self.auth, name="admin GET /admin/orders")


@events.quitting.add_listener
def _report_socket_events(environment: Any, **_: Any) -> None:
    environment.socket_events = dict(SOCKET_EVENTS)
