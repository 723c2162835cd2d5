"""The route table: every REST route of DESIGN.md section 2, its upstream and its access level.

Access levels: ``P`` public (a token, if sent, is passed on and judged by the service),
``U`` signed-in user or admin, ``A`` admin only. ``group`` picks the rate limit, the
upstream timeout and the body cap (``upload``: image files, up to 10 MB). ``/internal/*`` is
never routed, whatever the table says.

``area`` opens an admin route to API keys (libs/common/apikeys.py): reading it (GET) needs the
key's ``<area>:read`` or ``<area>:write`` scope, anything else ``<area>:write``. An admin route
without an area (API keys, users' roles) is for signed-in admins only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from libs.common import parts

Access = Literal["P", "U", "A"]
# every upstream a route may name: the registry's parts but the gateway
SERVICES = tuple(p.name for p in parts.SERVICES)


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: str
    service: str
    access: Access
    group: str = "default"
    area: str | None = None
    regex: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", _compile(self.pattern))
        if "GET" in self.methods:
            object.__setattr__(self, "methods", self.methods | {"HEAD"})

    def scopes_for(self, method: str) -> tuple[str, ...]:
        """The API key scopes that allow ``method`` here, any one of them (none: keys may not)."""
        if self.area is None:
            return ()
        write = f"{self.area}:write"
        return (f"{self.area}:read", write) if method in ("GET", "HEAD") else (write,)


def _compile(pattern: str) -> re.Pattern[str]:
    # {name} is one path segment, {name:path} the rest of the path (possibly empty)
    out, pos = [], 0
    for m in re.finditer(r"\{(\w+)(:path)?\}", pattern):
        out.append(re.escape(pattern[pos : m.start()]))
        out.append(".*" if m.group(2) else "[^/]+")
        pos = m.end()
    out.append(re.escape(pattern[pos:]))
    return re.compile("^" + "".join(out) + "$")


def r(
    methods: str,
    pattern: str,
    service: str,
    access: Access,
    group: str = "default",
    *,
    area: str | None = None,
) -> Route:
    return Route(frozenset(methods.split()), pattern, service, access, group, area)


ROUTES: list[Route] = [
    # auth
    r("POST", "/auth/register", "auth", "P", "auth"),
    r("POST", "/auth/login", "auth", "P", "auth"),
    r("POST", "/auth/refresh", "auth", "P", "auth"),
    r("POST", "/auth/logout", "auth", "U", "auth"),
    r("POST", "/auth/forgot-password", "auth", "P", "auth"),
    r("POST", "/auth/verify-otp", "auth", "P", "auth"),
    r("POST", "/auth/reset-password", "auth", "P", "auth"),
    r("GET PUT", "/users/me", "auth", "U"),
    r("GET POST", "/users/me/addresses", "auth", "U"),
    r("PUT DELETE", "/users/me/addresses/{address_id}", "auth", "U"),
    r("PUT", "/users/change-password", "auth", "U", "auth"),
    r("GET", "/admin/users", "auth", "A", area="customers"),
    r("PATCH", "/admin/users/{user_id}", "auth", "A"),
    r("GET POST", "/admin/api-keys", "auth", "A"),
    r("GET", "/admin/api-keys/scopes", "auth", "A"),
    r("DELETE", "/admin/api-keys/{key_id}", "auth", "A"),
    r("GET", "/.well-known/jwks.json", "auth", "P"),
    # catalog
    r("GET", "/categories", "catalog", "P"),
    r("GET", "/categories/{id_or_slug}", "catalog", "P"),
    r("GET", "/products", "catalog", "P"),
    r("GET", "/products/{id_or_slug}", "catalog", "P"),
    # product images (catalog reads them from its directory or its private bucket); immutable, cached a year
    r("GET", "/media/{key:path}", "catalog", "P", "media"),
    r("POST", "/admin/categories", "catalog", "A", area="catalog"),
    r("PUT PATCH DELETE", "/admin/categories/{category_id}", "catalog", "A", area="catalog"),
    r("POST", "/admin/products", "catalog", "A", area="catalog"),
    r("GET PUT PATCH DELETE", "/admin/products/{product_id}", "catalog", "A", area="catalog"),
    r("POST", "/admin/products/{product_id}/stock", "catalog", "A", area="catalog"),
    r("POST", "/admin/products/{product_id}/variants", "catalog", "A", area="catalog"),
    r("PATCH DELETE", "/admin/products/{product_id}/variants/{variant_id}", "catalog", "A", area="catalog"),
    r("POST", "/admin/products/{product_id}/images", "catalog", "A", "upload", area="catalog"),
    r("PATCH DELETE", "/admin/products/{product_id}/images/{image_id}", "catalog", "A", area="catalog"),
    r("GET PATCH", "/admin/settings/stock", "catalog", "A", area="catalog"),
    r("GET", "/admin/low-stock", "catalog", "A", area="catalog"),
    # cart (the literal /cart/clear is a DELETE only, so it cannot shadow PUT /cart/{item_id})
    r("GET POST", "/cart", "cart", "U"),
    r("DELETE", "/cart/clear", "cart", "U"),
    r("PUT DELETE", "/cart/{item_id}", "cart", "U"),
    r("GET POST", "/wishlist", "cart", "U"),
    r("DELETE", "/wishlist/{item_id}", "cart", "U"),
    r("POST", "/checkout/quote", "cart", "U"),
    # orders
    r("GET POST", "/orders", "orders", "U"),
    r("GET", "/orders/{order_id}", "orders", "U"),
    r("POST", "/orders/{order_id}/cancel", "orders", "U"),
    r("GET", "/admin/orders", "orders", "A", area="orders"),
    r("GET", "/admin/orders/{order_id}", "orders", "A", area="orders"),
    r("PATCH", "/admin/orders/{order_id}/status", "orders", "A", area="orders"),
    r("GET POST", "/orders/{order_id}/returns", "orders", "U"),
    r("GET", "/admin/returns", "orders", "A", area="orders"),
    r("PATCH", "/admin/returns/{return_id}", "orders", "A", area="orders"),
    # payments (the webhook is public: Stripe signs it and the service checks the signature)
    r("POST", "/payment/checkout", "payments", "U", "payment"),
    r("POST", "/payment/verify", "payments", "U", "payment"),
    r("POST", "/payment/webhook", "payments", "P", "payment"),
    # pricing (its quotes are internal: cart and orders ask for them)
    r("GET", "/shipping-methods", "pricing", "P"),
    r("GET POST", "/admin/promotions", "pricing", "A", area="pricing"),
    r("GET PUT PATCH DELETE", "/admin/promotions/{promotion_id}", "pricing", "A", area="pricing"),
    r("GET", "/admin/promotions/{promotion_id}/usages", "pricing", "A", area="pricing"),
    r("GET POST", "/admin/shipping-zones", "pricing", "A", area="pricing"),
    r("GET PUT PATCH DELETE", "/admin/shipping-zones/{zone_id}", "pricing", "A", area="pricing"),
    r("GET POST", "/admin/tax-rates", "pricing", "A", area="pricing"),
    r("GET PUT PATCH DELETE", "/admin/tax-rates/{rate_id}", "pricing", "A", area="pricing"),
    # notifications: signed-in admins only, no API-key area (customers' addresses; the dev mailbox
    # holds reset codes)
    r("GET", "/admin/emails", "notifications", "A"),
    r("GET", "/admin/emails/{email_id}", "notifications", "A"),
    r("POST", "/admin/emails/{email_id}/retry", "notifications", "A"),
    r("GET", "/admin/mailbox", "notifications", "A"),
    # webhooks: admins, and API keys with webhooks:read / webhooks:write
    r("GET POST", "/admin/webhooks", "notifications", "A", area="webhooks"),
    r("GET PATCH DELETE", "/admin/webhooks/{webhook_id}", "notifications", "A", area="webhooks"),
    r("POST", "/admin/webhooks/{webhook_id}/rotate-secret", "notifications", "A", area="webhooks"),
    r("GET", "/admin/webhooks/{webhook_id}/deliveries", "notifications", "A", area="webhooks"),
    r("GET", "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}", "notifications", "A", area="webhooks"),
    r(
        "POST",
        "/admin/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
        "notifications",
        "A",
        area="webhooks",
    ),
    # realtime: the admin console page and Socket.IO long-polling (websockets: gateway.sockets)
    r("GET", "/console", "realtime", "P"),
    r("GET", "/console/{rest:path}", "realtime", "P"),
    r("GET POST", "/socket.io/", "realtime", "P", "socket"),
]


class Match:
    """The outcome of looking a request up: a route, a path known under other methods, or nothing."""

    __slots__ = ("allowed", "route")

    def __init__(self, route: Route | None, allowed: frozenset[str] = frozenset()) -> None:
        self.route = route
        self.allowed = allowed


class RouteTable:
    """Finds the route of a request; ``/internal`` and dot segments are never matched."""

    def __init__(self, routes: list[Route] | None = None) -> None:
        self.routes = list(ROUTES if routes is None else routes)
        # most paths are looked up by their first segment, which keeps the scan short
        self._by_head: dict[str, list[Route]] = {}
        # a literal path (/cart/clear) shadows the templates it also fits (/cart/{item_id}), as the
        # OpenAPI document does: PUT /cart/clear is a 405 whose Allow lists only what /cart/clear has
        self._literal: dict[str, list[Route]] = {}
        for route in self.routes:
            self._by_head.setdefault(_head(route.pattern), []).append(route)
            if "{" not in route.pattern:
                self._literal.setdefault(route.pattern, []).append(route)

    def match(self, method: str, path: str) -> Match:
        if not routable(path):
            return Match(None)
        allowed: frozenset[str] = frozenset()
        for route in self._literal.get(path) or self._by_head.get(_head(path), []):
            if route.regex.match(path):
                if method in route.methods:
                    return Match(route)
                allowed |= route.methods
        return Match(None, allowed)

    def public_paths(self) -> set[str]:
        return {route.pattern for route in self.routes}


def routable(path: str) -> bool:
    """False for ``/internal/...`` and for paths a client could use to climb out of a route."""
    if path == "/internal" or path.startswith("/internal/"):
        return False
    return not any(seg in (".", "..") for seg in path.split("/"))


def _head(path: str) -> str:
    return path.split("/", 2)[1] if path.startswith("/") else ""
