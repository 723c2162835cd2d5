"""Which part consumes which events (DESIGN.md section 5), as the registry declares them.

Every part declares all of these queues when it connects, so an event is never
unroutable because its consumer has not started yet. A part adding a consumer adds its
keys to its ``consumes`` in :mod:`libs.common.parts`; its subscription must stay within them.
"""

from collections.abc import Iterable

from libs.common.parts import PARTS

CONSUMERS: dict[str, list[str]] = {p.name: list(p.consumes) for p in PARTS if p.consumes}


def retry_queue(queue: str, delay: float) -> str:
    return f"{queue}.retry.{int(delay * 1000)}ms"


def declared_queues(queue: str, retry_delays: Iterable[float]) -> list[str]:
    """Every queue the bus declares for one consumer queue: itself, its DLQ, one per retry delay."""
    return [queue, f"{queue}.dlq", *(retry_queue(queue, d) for d in sorted(set(retry_delays)))]
