"""Pricing's running context, typed once: its settings and no state of its own."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.pricing.settings import PricingSettings

PricingContext = ServiceContext[PricingSettings, None]
Ctx = Annotated[PricingContext, Depends(service_context)]
