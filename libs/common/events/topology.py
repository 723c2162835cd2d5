"""Which service consumes which events (DESIGN.md section 5).

Every part declares all of these queues when it connects, so an event is never
unroutable because its consumer has not started yet. A service adding a consumer
adds its keys here; its subscription must stay within them.
"""

from collections.abc import Iterable

CONSUMERS: dict[str, list[str]] = {
    "catalog": ["order.status_changed"],
    "cart": ["product.*", "stock.changed", "category.*", "order.created"],
    "orders": ["payment.*"],
    "payments": ["order.created", "order.status_changed"],
    "realtime": ["user.registered", "category.*", "product.*", "stock.changed", "order.*", "payment.*"],
}


def retry_queue(queue: str, delay: float) -> str:
    return f"{queue}.retry.{int(delay * 1000)}ms"


def declared_queues(queue: str, retry_delays: Iterable[float]) -> list[str]:
    """Every queue the bus declares for one consumer queue: itself, its DLQ, one per retry delay."""
    return [queue, f"{queue}.dlq", *(retry_queue(queue, d) for d in sorted(set(retry_delays)))]
