"""Settings of the notifications service (environment variables, see .env.example)."""

from __future__ import annotations

from functools import lru_cache

from pydantic import Field, SecretStr

from libs.common.config import CommonSettings


class NotificationsSettings(CommonSettings):
    """Notifications settings; every field is an environment variable of the same name.

    The SMTP_* names are auth's too, so one environment configures both senders.
    """

    service_name: str = "notifications"
    port: int = 8008
    database_url: str | None = Field(None, validation_alias="NOTIFICATIONS_DATABASE_URL")

    # what every e-mail is signed with (the footer of each template)
    shop_name: str = "Shop"
    shop_address: str = "1 Example Street, 10115 Berlin, Germany"
    shop_url: str = "http://127.0.0.1:8000"

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Shop <no-reply@shop.local>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    # STARTTLS after connecting (port 587), or TLS from the first byte (SMTP_TLS, port 465)
    smtp_starttls: bool = False
    smtp_tls: bool = False
    smtp_tls_verify: bool = True
    smtp_timeout: float = 10.0

    # back-off between attempts: EMAIL_RETRY_BASE seconds doubling up to EMAIL_RETRY_MAX. A server that
    # cannot be reached or answers 4xx (try later) is retried for as long as it takes; a 5xx refusal
    # (bad address, message refused) counts, and after EMAIL_MAX_ATTEMPTS the delivery is failed
    email_retry_base: float = 10.0
    email_retry_max: float = 3600.0
    email_max_attempts: int = 5
    # how often the sender looks for due deliveries when nothing wakes it
    email_poll_interval: float = 5.0

    # webhooks (services/notifications/webhooks.py). Targets resolving to private, loopback, link-local,
    # multicast or reserved addresses are refused unless WEBHOOK_ALLOW_PRIVATE (tests, make dev, make up)
    webhook_allow_private: bool = False
    # a delivery is retried with back-off (WEBHOOK_RETRY_BASE seconds doubling up to WEBHOOK_RETRY_MAX)
    # for WEBHOOK_RETRY_FOR seconds after it was made (3 days), then failed
    webhook_retry_for: float = 3 * 24 * 3600.0
    webhook_retry_base: float = 30.0
    webhook_retry_max: float = 3 * 3600.0
    # seconds one POST may take, connecting and reading the answer included
    webhook_timeout: float = 10.0
    # POSTs in flight at once to one endpoint, and in all (per replica)
    webhook_endpoint_concurrency: int = Field(2, ge=1)
    webhook_concurrency: int = Field(50, ge=1)
    # failed attempts in a row that turn an endpoint off (webhook.disabled tells the admins)
    webhook_disable_after: int = Field(15, ge=1)
    # seconds the old secret keeps signing beside the new one after a rotation (default a day)
    webhook_secret_overlap: float = 24 * 3600.0
    # how much of a receiver's answer is kept with each attempt (bytes)
    webhook_response_body_limit: int = 1024
    # how often the webhook sender looks for due deliveries when nothing wakes it
    webhook_poll_interval: float = 2.0

    # a Maildir that the dev SMTP catcher (make dev) writes; GET /admin/mailbox lists it when set
    dev_mailbox_dir: str | None = None


@lru_cache
def get_settings() -> NotificationsSettings:
    return NotificationsSettings()
