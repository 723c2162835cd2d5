"""Realtime's running context, typed once: its settings and its notifier (the one state it keeps)."""

from __future__ import annotations

from libs.common.service import ServiceContext
from services.realtime.notifications import Notifier
from services.realtime.settings import RealtimeSettings

RealtimeContext = ServiceContext[RealtimeSettings, Notifier]
