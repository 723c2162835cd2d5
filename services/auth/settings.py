"""Settings of the auth service (environment variables, see .env.example)."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from libs.common.config import CommonSettings, ConfigurationError


class AuthSettings(CommonSettings):
    service_name: str = "auth"
    port: int = 8001
    database_url: str | None = Field(None, validation_alias="AUTH_DATABASE_URL")

    access_token_ttl: int = 900
    # life of the token the gateway trades an API key for (it trades again before it runs out)
    api_key_token_ttl: int = Field(300, ge=60, le=3600)
    refresh_token_ttl: int = 30 * 24 * 3600
    # PEM of the RSA signing key; when unset a key is generated once and kept in the database
    jwt_private_key: SecretStr | None = None
    jwt_key_id: str | None = None
    # Fernet key(s), comma-separated, that seal generated signing keys in the database: the first
    # seals, every one opens (so this key can rotate too). Without it a database dump is enough to
    # mint admin tokens; prod refuses to start with neither this nor JWT_PRIVATE_KEY.
    signing_key_encryption_key: SecretStr | None = None
    # how long a process trusts its cached copy of the key table (rotation takes effect after it)
    signing_key_cache_seconds: float = 30.0
    jwks_min_refresh_seconds: float = 5.0

    argon2_memory_kib: int = 19456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1

    otp_ttl: int = 600
    otp_max_attempts: int = 5
    reset_token_ttl: int = 900

    email_backend: Literal["smtp", "log"] = "log"
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "Shop <no-reply@shop.local>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout: float = 10.0

    # password guesses: each (account, address) pair has this many free failures, then waits 1 s,
    # 2 s, 4 s... up to login_delay_max before its next try; the pair is forgotten login_failures_window
    # after its wait ends. Over all addresses an account takes login_failures_per_account failures per
    # window, then only addresses it signed in from before (for known_address_ttl) may try.
    login_free_failures: int = 5
    login_delay_max: int = 900
    login_failures_per_account: int = 100
    login_failures_window: int = 3600
    known_address_ttl: int = 90 * 24 * 3600
    login_attempts_per_ip: int = 30
    login_attempts_window: int = 60
    forgot_per_ip: int = 20
    forgot_per_email: int = 5
    forgot_window: int = 900
    verify_otp_per_ip: int = 30
    verify_otp_per_email: int = 15
    verify_otp_window: int = 900

    admin_email: str | None = None
    admin_password: SecretStr | None = None

    @field_validator("signing_key_encryption_key", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        return None if isinstance(value, str) and not value.strip() else value  # compose passes "" for unset

    @model_validator(mode="after")
    def _no_codes_in_production_logs(self) -> AuthSettings:
        if self.env == "prod" and self.email_backend == "log":
            raise ConfigurationError(
                "EMAIL_BACKEND=log would write reset codes to the logs; use smtp in prod"
            )
        if self.env == "prod" and self.jwt_private_key is None and self.signing_key_encryption_key is None:
            raise ConfigurationError(
                "signing keys would be kept readable in the database; set SIGNING_KEY_ENCRYPTION_KEY "
                "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())') "
                "or JWT_PRIVATE_KEY in prod"
            )
        return self


@lru_cache
def get_settings() -> AuthSettings:
    return AuthSettings()
