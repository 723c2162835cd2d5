"""Routes of the auth service: parse, call the rules, shape the answer."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from libs.common.auth import AdminUser, CurrentUser
from libs.common.db import SessionDep
from services.auth import recovery, service, throttle
from services.auth.context import Ctx
from services.auth.schemas import (
    Accepted,
    AdminUserUpdate,
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
) -> UserPage:
    """Accounts, newest first; search by email or name, filter by role and state."""
    return await service.list_users(
        session=session, page=page, page_size=page_size, q=q, role=role, is_active=is_active
    )


@admin.patch("/{user_id}")
async def update_user(
    user_id: uuid.UUID, body: AdminUserUpdate, admin_user: AdminUser, ctx: Ctx, session: SessionDep
) -> UserPublic:
    """Set a user's role or block/unblock them."""
    user = await service.admin_update(ctx=ctx, session=session, admin=admin_user, user_id=user_id, body=body)
    return UserPublic.model_validate(user)


@router.get("/.well-known/jwks.json", tags=["auth"])
async def jwks(ctx: Ctx, response: Response) -> dict[str, Any]:
    """The public keys that verify access tokens."""
    response.headers["Cache-Control"] = "public, max-age=60"
    return (await ctx.state.keys.ring()).jwks()


for _r in (auth, users, admin):
    router.include_router(_r)
