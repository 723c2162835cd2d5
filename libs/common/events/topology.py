"""Which service consumes which events (DESIGN.md section 5).

Every part declares all of these queues when it connects, so an event is never
unroutable because its consumer has not started yet. A service adding a consumer
adds its keys here; its subscription must stay within them.
"""

CONSUMERS: dict[str, list[str]] = {
    "catalog": ["order.status_changed"],
    "cart": ["product.*", "stock.changed", "category.*", "order.created"],
    "orders": ["payment.*"],
    "payments": ["order.created", "order.status_changed"],
    "realtime": ["user.registered", "category.*", "product.*", "stock.changed", "order.*", "payment.*"],
}
