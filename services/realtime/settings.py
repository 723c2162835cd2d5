"""Realtime settings."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field

from libs.common.config import CommonSettings


class RealtimeSettings(CommonSettings):
    """Realtime settings; every field is an environment variable of the same name."""

    service_name: str = "realtime"
    port: int = 8006
    cors_origins: list[str] = Field(
        default_factory=lambda: [
            "http://localhost:3000",
            "http://localhost:5173",
            "http://127.0.0.1:8000",
            "http://localhost:8000",
        ]
    )
    # how often live connections' tokens are checked again (logout, block, expiry)
    session_check_interval: float = 2.0
    replay_buffer: int = 1000
    # the most a resume replays per room; a larger gap gets resync (refetch over REST)
    replay_limit: int = 500
    # messages a client may send: per connection, and per user over all its connections here
    message_rate: float = 20.0
    message_burst: int = 60
    user_message_rate: float = 40.0
    user_message_burst: int = 120
    command_timeout: float = 10.0
    # where promotion:* commands go (default: the registry's)
    pricing_url: str = ""
    # how long the ack of a command sent with a request_id is kept for a retry to get it back
    command_result_ttl: int = 600
    # a broadcast makes a task and a frame per socket: at Python's default (700) a change to 1,000
    # sockets ran several young collections, each also walking the sockets' long-lived objects
    gc_young_threshold: int | None = Field(50_000, ge=100)


@lru_cache
def get_settings() -> RealtimeSettings:
    return RealtimeSettings()
