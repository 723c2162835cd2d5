"""The auth service's running context, typed once: its settings and what its rules hold at run time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends

from libs.common.service import ServiceContext, service_context
from services.auth.mailer import Mailer
from services.auth.passwords import Passwords
from services.auth.settings import AuthSettings
from services.auth.signing import Keys


@dataclass
class Runtime:
    """What the auth rules need beyond the shared service context."""

    settings: AuthSettings
    passwords: Passwords
    keys: Keys
    mailer: Mailer


AuthContext = ServiceContext[AuthSettings, Runtime]
Ctx = Annotated[AuthContext, Depends(service_context)]
