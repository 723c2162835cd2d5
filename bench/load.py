"""``make load``: the load a shop owner would put on the shop, stepped up until it stops holding.

bench/locustfile.py is the profile (browsing and search, cart and wishlist, checkout and payment,
admins on Socket.IO); bench/load_steps.py steps its user count up in a process of its own. This
script gets a shop ready for them and prints what they found: the highest rate the shop held
with p95 < 200 ms and no error, and each endpoint's p50/p95 at that step.

Without ``--url`` it starts the shop as ``make up`` runs it (tests/e2e/stack.py: every part its
own process on this run's PostgreSQL databases, Redis prefix and RabbitMQ exchange, on 127.0.0.1
only), seeds it with the project's own commands (``services.catalog seed --events``,
``services.pricing seed``, ``services.auth create-admin``), and removes it all at the end. The
load generator is one loopback address playing every shopper, so the gateway's rate limits are
set out of its way through ``RATE_LIMITS``, as ``make bench`` does; nothing is turned off in code.

With ``--url`` it drives that running shop: its catalog must have products in stock and its
payments must take the test card (the stand-in, or Stripe in test mode); ``--admin-email`` and
``--admin-password`` put admins on sockets (without them the profile runs without admins). It
registers the customers it needs through the gateway (waiting out 429s when the shop keeps its
default limits) and places and pays real orders.

    python bench/load.py [--url URL] [--seconds 240] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measuring import machine  # noqa: E402
from bench.stack import take_down  # noqa: E402
from libs.common.config import CommonSettings  # noqa: E402
from libs.common.events.topology import CONSUMERS  # noqa: E402
from libs.common.testing.infra import Infra, settings_for  # noqa: E402
from services.catalog.settings import CatalogSettings  # noqa: E402
from tests.e2e.stack import MailCatcher, Stack  # noqa: E402

# one loopback address plays every shopper: limits no crowd behind one NAT reaches (as make bench)
UNLIMITED = {"rate": 1_000_000, "burst": 1_000_000}
STACK_ENV = {
    "LOG_LEVEL": "WARNING",
    "RATE_LIMITS": json.dumps({"default": UNLIMITED, "auth": UNLIMITED, "socket": UNLIMITED}),
    # the deployed pool size, not the e2e stack's (sized for test runs sharing one PostgreSQL)
    "DB_POOL_SIZE": str(CommonSettings.model_fields["db_pool_size"].default),
}
ADMIN = {"email": "admin@load.shop.test", "password": "Admin-load-pass-1"}
PASSWORD = "Load-customer-1"
MIN_STOCK = 20  # units a variant must have to be put in carts
# an address in each country a seeded or test shop ships to; any other country gets a generic one
ADDRESSES = {
    "US": {"city": "Portland", "region": "OR", "postal_code": "97201"},
    "GB": {"city": "London", "postal_code": "N1 1AA"},
}


# --- the shop ------------------------------------------------------------------------------------


def run_command(stack: Stack, part: str, *args: str) -> None:
    module = {"auth": "services.auth", "catalog": "services.catalog", "pricing": "services.pricing"}[part]
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=stack.env(part),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args[:1])} failed:\n{done.stdout}\n{done.stderr}")
    print(f"  {module} {args[0]}: {done.stdout.strip().splitlines()[-1] if done.stdout.strip() else 'done'}")


async def settle(infra: Infra, timeout: float = 180) -> None:
    """Wait until the seed's events are consumed: catalog's outbox sent and every queue empty for 3 s,
    so the cart's read model knows every product and nobody is still consuming when counting starts."""
    import aio_pika

    catalog_db = settings_for(CatalogSettings, infra).db_url.replace("+asyncpg", "")
    deadline, quiet = time.monotonic() + timeout, 0
    conn = await aio_pika.connect(infra.amqp_url, timeout=10)
    try:
        channel = await conn.channel()
        while quiet < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the seed's events were not consumed within {timeout:g} s")
            db = await asyncpg.connect(catalog_db, timeout=10)
            try:
                pending = await db.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            finally:
                await db.close()
            for service in CONSUMERS:
                queue = await channel.declare_queue(f"{infra.queue_prefix}{service}.events", passive=True)
                pending += queue.declaration_result.message_count or 0
            quiet = quiet + 1 if pending == 0 else 0
            await asyncio.sleep(1)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def own_shop(args: argparse.Namespace) -> AsyncIterator[tuple[str, dict[str, str], str]]:
    """The shop as ``make up`` runs it, seeded; yields its gateway URL, its admin and its country."""
    infra = Infra.from_env()
    workdir = Path(tempfile.mkdtemp(prefix="shop-load-"))
    stack = Stack(infra=infra, workdir=workdir, mail=MailCatcher(), extra_env=dict(STACK_ENV))
    ok = False
    try:
        t0 = time.perf_counter()
        await stack.up()
        print(f"shop up in {time.perf_counter() - t0:.1f} s on {stack.gateway}", flush=True)
        await asyncio.to_thread(run_command, stack, "auth", "create-admin", "--email", ADMIN["email"],
                                "--password", ADMIN["password"])  # fmt: skip
        await asyncio.to_thread(run_command, stack, "pricing", "seed", "--country", "US")
        await asyncio.to_thread(
            run_command, stack, "catalog", "seed", "--products", str(args.products), "--events"
        )
        t0 = time.perf_counter()
        await settle(infra)
        print(f"  the seed's events consumed in {time.perf_counter() - t0:.1f} s", flush=True)
        yield stack.gateway, ADMIN, "US"
        ok = True
    finally:
        await take_down(stack, {}, ok)  # main() notes the load at the end itself


# --- what the users need -------------------------------------------------------------------------


async def polite(send: Any, attempts: int = 30) -> httpx.Response:
    """A request that waits out the gateway's 429s (a shop keeping its default limits)."""
    for _ in range(attempts):
        resp: httpx.Response = await send()
        if resp.status_code != 429:
            return resp
        await asyncio.sleep(float(resp.headers.get("Retry-After") or 1))
    return resp


async def discover(http: httpx.AsyncClient, pool: int) -> dict[str, Any]:
    """Categories, options, search words and products in stock, read from the shop itself."""
    resp = (await polite(lambda: http.get("/categories", params={"flat": "true"}))).raise_for_status()
    body = resp.json()
    cats = body["items"] if isinstance(body, dict) else body
    categories = [c["slug"] for c in cats if c.get("product_count", 1)] or [c["slug"] for c in cats]
    facets = (
        (await polite(lambda: http.get("/products", params={"facets": "true", "page_size": 1})))
        .raise_for_status()
        .json()
        .get("facets", {})
    )
    options = {name: [v["value"] for v in values] for name, values in facets.get("options", {}).items()}
    products: list[dict[str, Any]] = []
    words: set[str] = set()
    for page in range(1, 1000):
        params = {"in_stock": "true", "page_size": 100, "page": page, "sort": "newest"}
        items = (
            (await polite(lambda p=params: http.get("/products", params=p)))
            .raise_for_status()
            .json()["items"]
        )
        for p in items:
            variants = [
                {"id": v["id"], "stock": v["stock"]}
                for v in p.get("variants", [])
                # plenty left: a sold-out variant's 409 is the shop answering right, but it would
                # count as an error, and the fastest steps buy thousands of units
                if v.get("is_active", True) and v["stock"] >= MIN_STOCK
            ]
            if variants:
                products.append({"id": p["id"], "slug": p["slug"], "variants": variants})
            words.update(w.lower() for w in re.findall(r"[A-Za-z]{3,}", p["name"]))
        if len(items) < 100 or len(products) >= pool:
            break
    if not products or not categories:
        raise SystemExit("load: the shop has no products in stock (or no categories) to browse and buy")
    return {"categories": categories, "options": options, "products": products[:pool], "words": sorted(words)}


def address_in(country: str) -> dict[str, Any]:
    return {
        "name": "Load Customer",
        "line1": "1 Load Street",
        "city": "Capital",
        "postal_code": "10001",
        **ADDRESSES.get(country, {}),
        "country": country,
    }


async def shipping_country(
    http: httpx.AsyncClient, admin_token: str | None, customer: dict[str, Any], products: list[dict[str, Any]]
) -> str:
    """A country the shop quotes a delivery to: its shipping zones' (an admin reads them), the US or
    the UK, tried with a real quote of one line (a shop without zones ships anywhere)."""
    candidates: list[str] = []
    if admin_token:
        resp = await polite(
            lambda: http.get("/admin/shipping-zones", headers={"Authorization": f"Bearer {admin_token}"})
        )
        if resp.status_code == 200:
            body = resp.json()
            for zone in body["items"] if isinstance(body, dict) else body:
                candidates += [c for c in zone.get("countries", []) if c not in candidates]
    candidates += [c for c in ADDRESSES if c not in candidates]
    auth = {"Authorization": f"Bearer {customer['access_token']}"}
    line = {"variant_id": products[0]["variants"][0]["id"], "quantity": 1}
    (await polite(lambda: http.post("/cart", json=line, headers=auth))).raise_for_status()
    try:
        for country in candidates:
            body = {"shipping_address": address_in(country)}
            resp = await polite(lambda b=body: http.post("/checkout/quote", json=b, headers=auth))
            if resp.status_code == 200:
                return country
    finally:
        await polite(lambda: http.delete("/cart/clear", headers=auth))
    raise SystemExit(f"load: the shop quotes no delivery to any of {', '.join(candidates)}")


async def register(http: httpx.AsyncClient, count: int) -> list[dict[str, Any]]:
    """``count`` customers through the gateway."""
    sem = asyncio.Semaphore(8)

    async def one(i: int) -> dict[str, Any]:
        email = f"load-{i}-{uuid.uuid4().hex[:8]}@load.shop.test"
        body = {"email": email, "password": PASSWORD, "name": f"Load Customer {i}"}
        async with sem:
            resp = await polite(lambda: http.post("/auth/register", json=body))
        if resp.status_code != 201:
            raise RuntimeError(f"register answered {resp.status_code}: {resp.text[:300]}")
        tokens = resp.json()
        return {
            "email": email,
            "access_token": tokens["access_token"],
            "refresh_token": tokens["refresh_token"],
        }

    t0 = time.perf_counter()
    customers = await asyncio.gather(*(one(i) for i in range(count)))
    print(f"  registered {count} customers in {time.perf_counter() - t0:.1f} s", flush=True)
    return list(customers)


async def add_addresses(
    http: httpx.AsyncClient, customers: list[dict[str, Any]], address: dict[str, Any]
) -> None:
    """Each customer's address book gets the address their orders go to."""
    sem = asyncio.Semaphore(8)

    async def one(customer: dict[str, Any]) -> None:
        auth = {"Authorization": f"Bearer {customer['access_token']}"}
        async with sem:
            resp = await polite(lambda: http.post("/users/me/addresses", json=address, headers=auth))
        if resp.status_code != 201:
            raise RuntimeError(f"adding an address answered {resp.status_code}: {resp.text[:300]}")
        customer["address_id"] = resp.json()["id"]

    await asyncio.gather(*(one(c) for c in customers))


async def make_plan(
    url: str, admin: dict[str, str] | None, country: str | None, args: argparse.Namespace
) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        admin_token = None
        if admin:
            resp = await polite(lambda: http.post("/auth/login", json=admin))
            if resp.status_code != 200:
                raise SystemExit(f"load: the admin could not sign in ({resp.status_code}: {resp.text[:200]})")
            admin_token = resp.json()["access_token"]
        found = await discover(http, args.pool)
        customers = await register(http, max(1, args.customers))
        country = country or await shipping_country(http, admin_token, customers[0], found["products"])
        address = address_in(country)
        await add_addresses(http, customers, address)
    print(
        f"  plan: {len(found['products'])} products in stock, {len(found['categories'])} categories, "
        f"options {sorted(found['options'])}, {len(found['words'])} search words, shipping to {country}",
        flush=True,
    )
    return {"host": url, "admin": admin, "address": address, "customers": customers, **found}


# --- the run and its report ----------------------------------------------------------------------


def run_steps(plan: dict[str, Any], args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    plan_path, out = workdir / "plan.json", workdir / "steps.json"
    plan_path.write_text(json.dumps(plan))
    env = {**os.environ, "LOAD_ADMINS": str(args.admins), "LOAD_TOUR": "1" if args.tour else "0"}
    command = [
        sys.executable, str(ROOT / "bench" / "load_steps.py"), "--plan", str(plan_path), "--out", str(out),
        "--seconds", str(args.seconds), "--start-users", str(args.start_users), "--factor", str(args.factor),
        "--warm", str(args.warm), "--step-seconds", str(args.step_seconds), "--p95-ms", str(args.p95_ms),
    ]  # fmt: skip
    # the steps' own length past the budget, and locust's start and stop
    limit = args.seconds + args.warm + args.step_seconds + 120
    subprocess.run(command, cwd=ROOT, env=env, check=True, timeout=limit)
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def best_step(result: dict[str, Any]) -> dict[str, Any] | None:
    held = [s for s in result["steps"] if s["passed"]]
    return max(held, key=lambda s: s["rps"]) if held else None


def render(result: dict[str, Any], info: dict[str, Any], p95_ms: float) -> str:
    lines = [
        f"machine: {info['nproc']} CPUs ({info['cpu']}), {info['memory_gib']} GiB, Python {info['python']}; "
        f"the load generator on the same cores; load average {' '.join(map(str, info['load_at_start']))} "
        f"at start, {' '.join(map(str, info['load_at_end']))} at end",
        "",
        "| users | req/s | p50 ms | p95 ms | errors | browse / cart / checkout / admin | generator CPU | machine busy | load avg |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in result["steps"]:
        mix = " / ".join(f"{s['mix'].get(k, 0):.0%}" for k in ("browse", "cart", "checkout", "admin"))
        lines.append(
            f"| {s['users']} | {s['rps']:.1f} | {s['p50_ms']} | {s['p95_ms']} | {s['failures']} | {mix} | "
            f"{s['generator_cpu']:.0%} | {s['machine_busy']:.0%} | {s['load_average'][0]} |"
        )
    best = best_step(result)
    lines.append("")
    if best is None:
        lines.append(f"NO step held p95 < {p95_ms:g} ms with 0 errors")
    else:
        lines += [
            f"HOLDS {best['rps']:.0f} req/s with p95 {best['p95_ms']} ms (< {p95_ms:g}) and 0 errors, "
            f"at {best['users']} users ({result['admins']} admins on sockets), load average {best['load_average'][0]}",
            "",
            "| endpoint | requests | req/s | p50 ms | p95 ms |",
            "|---|---|---|---|---|",
            *(
                f"| {e['name']} | {e['requests']} | {e['rps']} | {e['p50_ms']} | {e['p95_ms']} |"
                for e in best["endpoints"]
                if not e["name"].startswith("setup ")
            ),
        ]
    if result["socket_events"]:
        events = ", ".join(f"{k} {v}" for k, v in sorted(result["socket_events"].items()))
        lines += ["", f"admins' sockets received: {events}"]
    if result["failed"]:
        lines += ["", "errors over the whole run:"]
        lines += [f"  {count} x {what}" for what, count in sorted(result["failed"].items())]
    return "\n".join(lines)


async def external_plan(args: argparse.Namespace) -> dict[str, Any]:
    admin = {"email": args.admin_email, "password": args.admin_password} if args.admin_email else None
    if admin is None:
        print("load: no --admin-email/--admin-password: no admins on sockets in this run", flush=True)
        args.admins = 0
    return await make_plan(args.url.rstrip("/"), admin, None, args)


async def own_run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    async with own_shop(args) as (url, admin, country):
        plan = await make_plan(url, admin, country, args)
        return await asyncio.to_thread(run_steps, plan, args, workdir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default=os.environ.get("LOAD_URL") or None, help="a running shop's gateway")
    parser.add_argument("--admin-email", default=os.environ.get("LOAD_ADMIN_EMAIL"))
    parser.add_argument("--admin-password", default=os.environ.get("LOAD_ADMIN_PASSWORD"))
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("LOAD_SECONDS") or 240),
                        help="the stepping's budget (the shop's start and seed come on top)")  # fmt: skip
    parser.add_argument("--products", type=int, default=2000, help="products seeded into a shop started here")
    parser.add_argument("--customers", type=int, default=100, help="customers registered beforehand")
    parser.add_argument("--pool", type=int, default=1000, help="products in stock the customers buy from")
    parser.add_argument("--admins", type=int, default=2, help="admins on sockets")
    parser.add_argument("--start-users", type=int, default=10)
    parser.add_argument("--factor", type=float, default=1.5)
    parser.add_argument("--warm", type=float, default=5)
    parser.add_argument("--step-seconds", type=float, default=15)
    parser.add_argument("--p95-ms", type=float, default=200)
    parser.add_argument(
        "--tour",
        action="store_true",
        help="every user does each of its actions once first, thinking less (the test's short run)",
    )
    parser.add_argument("--json", type=Path, help="also write the machine and every step to this file")
    args = parser.parse_args()
    if args.url and args.admin_email and not args.admin_password:
        parser.error("--admin-email needs --admin-password")
    info = machine()
    info["memory_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    workdir = Path(tempfile.mkdtemp(prefix="shop-load-plan-"))
    try:
        if args.url:
            plan = asyncio.run(external_plan(args))
            result = run_steps(plan, args, workdir)
        else:
            result = asyncio.run(own_run(args, workdir))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    info["load_at_end"] = [round(x, 2) for x in os.getloadavg()]
    print("\n" + render(result, info, args.p95_ms), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, **result}, indent=2) + "\n")
    sys.exit(0 if best_step(result) is not None else 1)


if __name__ == "__main__":
    main()
