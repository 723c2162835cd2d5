"""The parts of the shop, declared once (DESIGN.md section 1).

Everything that enumerates parts reads this table: the service URLs in the settings,
the events topology, the devserver (``make dev``), ``make up`` (scripts/up.py), the
gateway's upstreams, the AsyncAPI document and the checks on docker-compose.yml. Adding
a part is its own folder plus one line here (and its service in docker-compose.yml,
which a test holds to this table).

Data only: nothing here imports a part, so the kernel still depends on nothing above it;
the code that must load a part imports ``Part.module`` by name.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    """One deployable part.

    ``consumes``: the routing-key patterns of the events it consumes (its queue is
    ``<name>.events``); every part declares every consumer's queue when it connects, so
    an event is never unroutable because its consumer has not started yet. A consumer's
    subscriptions must stay within its patterns.
    ``database``: it owns a PostgreSQL database (``python -m <module> migrate`` applies
    its schema). ``bus``: it talks to RabbitMQ (publishes or consumes).
    ``calls``: the parts it calls over HTTP (every part but auth fetches auth's signing
    keys); the Kubernetes NetworkPolicies admit exactly these callers.
    """

    name: str
    port: int
    module: str  # the package ``python -m`` runs; it has ``app.create_app`` and ``settings.<settings>``
    settings: str  # the settings class, in ``<module>.settings``
    consumes: tuple[str, ...] = ()
    calls: tuple[str, ...] = ("auth",)
    database: bool = True
    bus: bool = True

    @property
    def url_env(self) -> str:
        """The variable that overrides where the other parts reach it."""
        return f"{self.name.upper()}_URL"


PARTS: tuple[Part, ...] = (
    Part("auth", 8001, "services.auth", "AuthSettings", calls=()),
    Part(
        "catalog",
        8002,
        "services.catalog",
        "CatalogSettings",
        consumes=("order.status_changed", "return.received"),
    ),
    Part(
        "cart",
        8003,
        "services.cart",
        "CartSettings",
        calls=("auth", "catalog", "pricing"),
        consumes=("product.*", "stock.changed", "category.*", "order.created"),
    ),
    Part(
        "orders",
        8004,
        "services.orders",
        "OrdersSettings",
        consumes=("payment.*",),
        calls=("auth", "catalog", "cart", "pricing"),
    ),
    # payments asks orders about an order it has not heard of yet (checkout: 425 or 404)
    Part(
        "payments",
        8005,
        "services.payments",
        "PaymentsSettings",
        calls=("auth", "orders"),
        consumes=("order.created", "order.status_changed", "return.received"),
    ),
    Part(
        "realtime",
        8006,
        "services.realtime",
        "RealtimeSettings",
        database=False,
        calls=("auth", "catalog", "orders", "pricing"),
        consumes=(
            "user.registered",
            "category.*",
            "product.*",
            "stock.changed",
            "order.*",
            "return.*",
            "payment.*",
            "promotion.*",
            "shipping.*",
            "tax.*",
            "webhook.disabled",
            "settings.stock_updated",
        ),
    ),
    Part(
        "pricing",
        8007,
        "services.pricing",
        "PricingSettings",
        consumes=("category.*", "product.*", "order.created", "order.status_changed"),
    ),
    # mails customers from events (asks auth for a customer's address) and forwards every event to the
    # webhooks that match it: its queue takes all of them (services/notifications/__init__.py)
    Part(
        "notifications",
        8008,
        "services.notifications",
        "NotificationsSettings",
        consumes=("#",),
    ),
    Part(
        "gateway",
        8000,
        "gateway",
        "GatewaySettings",
        database=False,
        bus=False,
        calls=("auth", "catalog", "cart", "orders", "payments", "realtime", "pricing", "notifications"),
    ),
)

BY_NAME: dict[str, Part] = {part.name: part for part in PARTS}
GATEWAY = BY_NAME["gateway"]
# every part the gateway routes to
SERVICES: tuple[Part, ...] = tuple(part for part in PARTS if part is not GATEWAY)

# where the parts reach each other unless <PART>_URL says otherwise; {name} and {port} are the part's
DEFAULT_URL_TEMPLATE = "http://127.0.0.1:{port}"


def part(name: str) -> Part:
    """The part called ``name``; ``KeyError`` names the known ones."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"no part {name!r} (libs/common/parts.py knows {', '.join(BY_NAME)})") from None


def default_url(p: Part, template: str = DEFAULT_URL_TEMPLATE) -> str:
    return template.format(name=p.name, port=p.port)
