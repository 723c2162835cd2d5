"""The payments service's running context, typed once: its settings and the payment provider it holds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.payments.provider import PaymentProvider
from services.payments.settings import PaymentsSettings


@dataclass
class PaymentsState:
    provider: PaymentProvider


PaymentsContext = ServiceContext[PaymentsSettings, PaymentsState]
Ctx = Annotated[PaymentsContext, Depends(service_context)]
