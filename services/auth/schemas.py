"""Request and response bodies of the auth service."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from libs.common.apikeys import SCOPES
from libs.contracts.addresses import Address, SavedAddress
from services.auth.passwords import MIN_LENGTH

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")


def normalize_email(value: str) -> str:
    value = value.strip().lower()
    if len(value) > 254 or not _EMAIL.match(value):
        raise ValueError("must be an email address like name@example.com")
    return value


# the schema says what the validators enforce, so a schema-valid body is not refused for its shape
Email = Annotated[
    str,
    AfterValidator(normalize_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
Password = Annotated[str, Field(min_length=1, max_length=1024)]
# a password being set: the policy (passwords.check_policy) refuses it as a 422 weak-password problem
NewPassword = Annotated[
    str,
    Field(min_length=1, max_length=1024),
    WithJsonSchema(
        {
            "type": "string",
            "minLength": MIN_LENGTH,
            "maxLength": 1024,
            "description": f"at least {MIN_LENGTH} characters of at least two kinds (lower, upper, digit, other)",
        }
    ),
]
Role = Literal["user", "admin"]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class AddressIn(Address):
    """The shared address shape, plus whether it should be the default (at most one is)."""

    is_default: bool | None = None


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    email: str
    name: str
    phone: str | None
    role: Role
    is_active: bool
    email_verified: bool
    addresses: list[SavedAddress]
    created_at: datetime


class UserUpdate(BaseModel):
    """Profile fields a user may change; anything else in the body (role, id, ...) is ignored."""

    model_config = ConfigDict(extra="ignore")

    name: Name | None = None
    phone: str | None = Field(None, max_length=40)
    addresses: list[AddressIn] | None = Field(
        None, max_length=20, description="replaces the whole address book"
    )


class AdminUserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    is_active: bool | None = None


class UserPage(BaseModel):
    items: list[UserPublic]
    total: int
    page: int
    page_size: int


class Tokens(BaseModel):
    access_token: str
    refresh_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_in: int


class Registered(Tokens):
    """A signed-in session's tokens with its user: the answer of register and of login."""

    user: UserPublic


class RegisterIn(BaseModel):
    email: Email
    password: NewPassword
    name: Name


class LoginIn(BaseModel):
    email: Email
    password: Password


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class ForgotIn(BaseModel):
    email: Email


class VerifyOtpIn(BaseModel):
    email: Email
    otp: str = Field(pattern=r"^\d{6}$", description="the 6-digit code from the email")


class ResetToken(BaseModel):
    reset_token: str
    expires_in: int


class ResetIn(BaseModel):
    reset_token: str = Field(min_length=1, max_length=200)
    new_password: NewPassword


class ChangePasswordIn(BaseModel):
    current_password: Password
    new_password: NewPassword


class Accepted(BaseModel):
    detail: str


Scope = Annotated[str, Field(description="one of libs.common.apikeys.SCOPES, e.g. catalog:write")]


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    scopes: list[Scope] = Field(min_length=1, max_length=len(SCOPES))

    @field_validator("scopes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(SCOPES))
        if unknown:
            raise ValueError(f"unknown scope(s) {', '.join(unknown)}; known: {', '.join(SCOPES)}")
        return sorted(set(value))


class ApiKeyPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str = Field(description="the key's visible start, to tell keys apart")
    scopes: list[str]
    created_by: uuid.UUID
    created_at: datetime
    last_used_at: datetime | None = Field(description="updated at most once a minute")
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="the whole key: shown in this answer only, keep it secret")


class ApiKeyPage(BaseModel):
    items: list[ApiKeyPublic]
    total: int
    page: int
    page_size: int


class ApiKeyExchange(BaseModel):
    key: Annotated[str, StringConstraints(max_length=200)]


class ApiKeyToken(BaseModel):
    access_token: str
    expires_in: int
    key_id: uuid.UUID
    scopes: list[str]
