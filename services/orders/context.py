"""The orders service's running context, typed once: its settings and the placements this process tracks."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.orders.settings import OrdersSettings


@dataclass
class Attempt:
    """One request's placement, and how far it got (which decides what a failure must undo)."""

    order_id: uuid.UUID
    user_id: uuid.UUID
    key: str | None
    reserved: bool = False  # catalog was asked to reserve: stock may be held
    committing: bool = False  # the order's transaction was tried: it may have committed


@dataclass
class Tracker:
    """Per process: the placements its requests are working on, and clean-ups still to do."""

    held: set[uuid.UUID] = field(default_factory=set)
    pending: dict[uuid.UUID, Attempt] = field(default_factory=dict)


@dataclass
class OrdersState:
    placements: Tracker = field(default_factory=Tracker)


OrdersContext = ServiceContext[OrdersSettings, OrdersState]
Ctx = Annotated[OrdersContext, Depends(service_context)]
