"""The cart's running context, typed once: its settings and no state of its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.cart.settings import CartSettings

CartContext = ServiceContext[CartSettings, None]
Ctx = Annotated[CartContext, Depends(service_context)]
