"""Routes of the auth service: parse, call the rules, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from libs.common.apikeys import SCOPES
from libs.common.auth import AdminUser, CurrentUser, InternalCaller
from libs.common.db import SessionDep
from libs.contracts.addresses import SavedAddress
from services.auth import addresses, apikeys, recovery, service, throttle
from services.auth.context import Ctx
from services.auth.schemas import (
    Accepted,
    AddressIn,
    AdminUserUpdate,
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyExchange,
    ApiKeyPage,
    ApiKeyPublic,
    ApiKeyToken,
    ChangePasswordIn,
    ForgotIn,
    LoginIn,
    RefreshIn,
    Registered,
    RegisterIn,
    ResetIn,
    ResetToken,
    Role,
    Tokens,
    UserPage,
    UserPublic,
    UserUpdate,
    VerifyOtpIn,
)


def _client(request: Request) -> service.Client:
    return service.Client(ip=throttle.client_ip(request), user_agent=request.headers.get("user-agent"))


ClientDep = Annotated[service.Client, Depends(_client)]

router = APIRouter()
auth = APIRouter(prefix="/auth", tags=["auth"])
users = APIRouter(prefix="/users", tags=["users"])
admin = APIRouter(prefix="/admin/users", tags=["admin"])
internal = APIRouter(prefix="/internal", tags=["internal"], include_in_schema=False)
api_keys = APIRouter(prefix="/admin/api-keys", tags=["admin"])


@auth.post("/register", status_code=201)
async def register(body: RegisterIn, ctx: Ctx, session: SessionDep, client: ClientDep) -> Registered:
    """Create a customer account; answers with the user and a signed-in session's tokens."""
    return await service.register(ctx=ctx, session=session, body=body, client=client)


@auth.post("/login")
async def login(body: LoginIn, ctx: Ctx, session: SessionDep, client: ClientDep) -> Registered:
    """Sign in with email and password; answers with the user and the session's tokens, as register does."""
    return await service.login(ctx=ctx, session=session, body=body, client=client)


@auth.post("/refresh")
async def refresh(body: RefreshIn, ctx: Ctx, session: SessionDep) -> Tokens:
    """Exchange a refresh token for new tokens (the old refresh token is used up)."""
    return await service.refresh(ctx=ctx, session=session, raw=body.refresh_token)


@auth.post("/logout", status_code=204)
async def logout(user: CurrentUser, ctx: Ctx, session: SessionDep) -> Response:
    """End this session everywhere at once."""
    await service.logout(ctx=ctx, session=session, principal=user)
    return Response(status_code=204)


@auth.post("/forgot-password", status_code=202)
async def forgot_password(body: ForgotIn, ctx: Ctx, session: SessionDep, client: ClientDep) -> Accepted:
    """Ask for a password reset code by email (always 202)."""
    await recovery.forgot_password(ctx=ctx, session=session, email=body.email, ip=client.ip)
    return Accepted(detail="If an account exists for this email, a code is on its way.")


@auth.post("/verify-otp")
async def verify_otp(body: VerifyOtpIn, ctx: Ctx, client: ClientDep) -> ResetToken:
    """Exchange the emailed code for a single-use reset token."""
    return await recovery.verify_otp(ctx=ctx, email=body.email, otp=body.otp, ip=client.ip)


@auth.post("/reset-password", status_code=204)
async def reset_password(body: ResetIn, ctx: Ctx, session: SessionDep) -> Response:
    """Set a new password with a reset token; every session of the account ends."""
    await recovery.reset_password(
        ctx=ctx, session=session, reset_token=body.reset_token, new_password=body.new_password
    )
    return Response(status_code=204)


@users.get("/me")
async def read_me(user: CurrentUser, session: SessionDep) -> UserPublic:
    """The caller's profile."""
    return UserPublic.model_validate(await service.get_user(session=session, user_id=user.user_id))


@users.put("/me")
async def update_me(body: UserUpdate, user: CurrentUser, session: SessionDep) -> UserPublic:
    """Change name, phone or addresses."""
    return UserPublic.model_validate(
        await service.update_profile(session=session, user_id=user.user_id, body=body)
    )


@users.get("/me/addresses")
async def list_addresses(user: CurrentUser, session: SessionDep) -> list[SavedAddress]:
    """The caller's address book, oldest first; exactly one is the default when any exist."""
    return await addresses.list_book(session=session, user_id=user.user_id)


@users.post("/me/addresses", status_code=201)
async def add_address(body: AddressIn, user: CurrentUser, session: SessionDep) -> SavedAddress:
    """Save an address; the first one saved becomes the default. At most 20 (409 past that)."""
    return await addresses.add(session=session, user_id=user.user_id, body=body)


@users.put("/me/addresses/{address_id}")
async def replace_address(
    address_id: uuid.UUID, body: AddressIn, user: CurrentUser, session: SessionDep
) -> SavedAddress:
    """Rewrite one of the caller's addresses; is_default true makes it the default."""
    return await addresses.replace(session=session, user_id=user.user_id, address_id=address_id, body=body)


@users.delete("/me/addresses/{address_id}", status_code=204)
async def delete_address(address_id: uuid.UUID, user: CurrentUser, session: SessionDep) -> Response:
    """Remove one of the caller's addresses; deleting the default promotes the oldest remaining one."""
    await addresses.delete(session=session, user_id=user.user_id, address_id=address_id)
    return Response(status_code=204)


@internal.get("/users/{user_id}")
async def internal_user(user_id: uuid.UUID, _: InternalCaller, session: SessionDep) -> UserPublic:
    """One account, for notifications to address a customer's e-mail (events carry only the id)."""
    return UserPublic.model_validate(await service.get_user(session=session, user_id=user_id))


@internal.get("/users/{user_id}/addresses/{address_id}")
async def internal_address(
    user_id: uuid.UUID, address_id: uuid.UUID, _: InternalCaller, session: SessionDep
) -> SavedAddress:
    """One saved address of one user, for orders to resolve an order's ``address_id``."""
    return await addresses.internal_get(session=session, user_id=user_id, address_id=address_id)


@users.put("/change-password", status_code=204)
async def change_password(
    body: ChangePasswordIn, user: CurrentUser, ctx: Ctx, session: SessionDep
) -> Response:
    """Change the password; the caller's other sessions end."""
    await service.change_password(
        ctx=ctx, session=session, principal=user, current=body.current_password, new=body.new_password
    )
    return Response(status_code=204)


@admin.get("")
async def list_users(
    _: AdminUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    q: Annotated[str | None, Query(max_length=200)] = None,
    role: Role | None = None,
    is_active: bool | None = None,
    id: Annotated[list[uuid.UUID] | None, Query(max_length=100)] = None,
) -> UserPage:
    """Accounts, newest first; search by email or name, filter by role and state; `id` (repeatable)
    names the accounts wanted, so a page of orders shows its customers in one call."""
    return await service.list_users(
        session=session, page=page, page_size=page_size, q=q, role=role, is_active=is_active, ids=id
    )


@admin.patch("/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: AdminUserUpdate, admin_user: AdminUser, ctx: Ctx, session: SessionDep
) -> UserPublic:
    """Set a user's role or block/unblock them."""
    user = await service.admin_update(ctx=ctx, session=session, admin=admin_user, user_id=user_id, body=body)
    return UserPublic.model_validate(user)


@api_keys.post("", status_code=201)
async def create_api_key(body: ApiKeyCreate, admin_user: AdminUser, session: SessionDep) -> ApiKeyCreated:
    """Issue a key for an integrator with the given scopes; `key` is in this answer only."""
    return await apikeys.create(session=session, admin=admin_user, body=body)


@api_keys.get("")
async def list_api_keys(
    _: AdminUser,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    page_size: Annotated[int, Query(ge=1, le=100)] = 20,
    revoked: bool | None = None,
) -> ApiKeyPage:
    """Every key, newest first, without its secret (`prefix` tells them apart)."""
    return await apikeys.listing(session=session, page=page, page_size=page_size, revoked=revoked)


@api_keys.get("/scopes")
async def list_api_key_scopes(_: AdminUser) -> dict[str, str]:
    """The scopes a key may be given, each with what it allows (the console offers these)."""
    return dict(SCOPES)


@api_keys.delete("/{key_id}")
async def revoke_api_key(key_id: uuid.UUID, _: AdminUser, ctx: Ctx, session: SessionDep) -> ApiKeyPublic:
    """Revoke a key; it is refused at once everywhere. Revoking again changes nothing."""
    return await apikeys.revoke(ctx=ctx, session=session, key_id=key_id)


@internal.post("/api-keys/exchange")
async def exchange_api_key(
    body: ApiKeyExchange, _: InternalCaller, ctx: Ctx, session: SessionDep
) -> ApiKeyToken:
    """The gateway's trade of a live key for a short-lived token with its scopes."""
    return await apikeys.exchange(ctx=ctx, session=session, key=body.key)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return (await ctx.state.keys.ring()).jwks()


for _r in (auth, users, admin, api_keys, internal):
    router.include_router(_r)
