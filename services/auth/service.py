"""Business rules of accounts and sessions: keyword-only async functions raising DomainErrors."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.auth import Principal, revoke_session, revoke_user_tokens
from libs.common.errors import BadRequest, Conflict, Forbidden, NotFound, Unauthorized
from libs.common.events import publish_in
from services.auth import addresses, throttle
from services.auth.context import AuthContext, Runtime
from services.auth.events import user_registered
from services.auth.models import AuthSession, RefreshToken, User
from services.auth.passwords import Passwords, check_policy
from services.auth.schemas import (
    AdminUserUpdate,
    LoginIn,
    Registered,
    RegisterIn,
    Tokens,
    UserPage,
    UserPublic,
    UserUpdate,
)

BAD_CREDENTIALS = "The email or password is not correct."
BAD_REFRESH = "The refresh token is not valid; sign in again."


@dataclass(frozen=True)
class Client:
    ip: str
    user_agent: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def token_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


async def _open_session(
    session: AsyncSession, rt: Runtime, user: User, client: Client
) -> tuple[uuid.UUID, str]:
    sid = uuid.uuid4()
    session.add(
        AuthSession(
            id=sid,
            user_id=user.id,
            ip=client.ip[:64],
            user_agent=(client.user_agent or "")[:300] or None,
            expires_at=_now() + timedelta(seconds=rt.settings.refresh_token_ttl),
        )
    )
    raw = secrets.token_urlsafe(32)
    await session.flush()
    session.add(RefreshToken(token_hash=token_hash(raw), session_id=sid))
    return sid, raw


async def _tokens(rt: Runtime, user: User, sid: uuid.UUID, refresh: str) -> Tokens:
    access, ttl = await rt.keys.mint(user_id=user.id, role=user.role, sid=sid)
    return Tokens(access_token=access, refresh_token=refresh, expires_in=ttl)


async def _revoke_sessions(
    session: AsyncSession, *, user_id: uuid.UUID, reason: str, keep: uuid.UUID | None = None
) -> list[uuid.UUID]:
    """Mark the user's live sessions revoked in the open transaction; returns their ids."""
    stmt = (
        sa.update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=_now(), revoked_reason=reason)
        .returning(AuthSession.id)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    return list((await session.execute(stmt)).scalars())


async def _kill_access_tokens(
    ctx: AuthContext, sids: list[uuid.UUID], *, user_id: uuid.UUID | None = None
) -> None:
    """After the commit: make the sessions' access tokens fail at every verifier at once."""
    rt = ctx.state
    ttl = rt.settings.access_token_ttl
    for sid in sids:
        await revoke_session(ctx.redis, rt.settings.redis_prefix, str(sid), ttl_seconds=ttl)
    if user_id is not None:
        await revoke_user_tokens(ctx.redis, rt.settings.redis_prefix, user_id, ttl_seconds=ttl)


async def register(
    *, ctx: AuthContext, session: AsyncSession, body: RegisterIn, client: Client
) -> Registered:
    """Create a customer account, sign it in and announce it (user.registered)."""
    rt = ctx.state
    check_policy(body.password)
    password_hash = await rt.passwords.hash(body.password)
    try:
        async with session.begin():
            if await session.scalar(sa.select(User.id).where(User.email == body.email)) is not None:
                raise Conflict("An account with this email already exists.", type_="email-taken")
            user = User(
                email=body.email, name=body.name, password_hash=password_hash, role="user", addresses=[]
            )
            session.add(user)
            await session.flush()
            await session.refresh(user)
            sid, refresh = await _open_session(session, rt, user, client)
            await publish_in(session, user_registered(user))
    except IntegrityError as exc:
        raise Conflict("An account with this email already exists.", type_="email-taken") from exc
    tokens = await _tokens(rt, user, sid, refresh)
    return Registered(**tokens.model_dump(), user=UserPublic.model_validate(user))


async def login(*, ctx: AuthContext, session: AsyncSession, body: LoginIn, client: Client) -> Registered:
    """Exchange email and password for tokens; unknown email and wrong password look the same."""
    rt = ctx.state
    s = rt.settings
    await throttle.hit(
        ctx,
        scope="login-ip",
        subject=client.ip,
        limit=s.login_attempts_per_ip,
        window=s.login_attempts_window,
    )
    await throttle.check_ceiling(
        ctx,
        account=body.email,
        address=client.ip,
        limit=s.login_failures_per_account,
        window=s.login_failures_window,
    )
    await throttle.claim_attempt(
        ctx,
        account=body.email,
        address=client.ip,
        free=s.login_free_failures,
        max_delay=s.login_delay_max,
        memory=s.login_failures_window,
    )
    async with session.begin():
        user = await session.scalar(sa.select(User).where(User.email == body.email))
    if user is None:
        await rt.passwords.burn(body.password)
    if user is None or not await rt.passwords.verify(user.password_hash, body.password):
        await throttle.add_failure(
            ctx, scope="login-fail", subject=body.email, window=s.login_failures_window
        )
        raise Unauthorized(BAD_CREDENTIALS)
    if not user.is_active:
        raise Forbidden("This account has been blocked. Contact support.", type_="account-blocked")
    await throttle.forgive(ctx, account=body.email, address=client.ip)
    await throttle.remember_address(ctx, account=body.email, address=client.ip, ttl=s.known_address_ttl)
    new_hash = (
        await rt.passwords.hash(body.password) if rt.passwords.needs_rehash(user.password_hash) else None
    )
    async with session.begin():
        if new_hash is not None:
            await session.execute(sa.update(User).where(User.id == user.id).values(password_hash=new_hash))
        sid, refresh = await _open_session(session, rt, user, client)
    tokens = await _tokens(rt, user, sid, refresh)
    return Registered(**tokens.model_dump(), user=UserPublic.model_validate(user))  # as register answers


async def refresh(*, ctx: AuthContext, session: AsyncSession, raw: str) -> Tokens:
    """Rotate a refresh token; a token used twice ends its whole session."""
    rt = ctx.state
    reused: uuid.UUID | None = None
    async with session.begin():
        row = (
            await session.execute(
                sa.select(RefreshToken, AuthSession, User)
                .join(AuthSession, AuthSession.id == RefreshToken.session_id)
                .join(User, User.id == AuthSession.user_id)
                .where(RefreshToken.token_hash == token_hash(raw))
                .with_for_update(of=RefreshToken)
            )
        ).first()
        if row is None:
            raise Unauthorized(BAD_REFRESH)
        token, auth_session, user = row
        if token.used_at is not None:
            # a replayed token means it leaked: end the session for its legitimate holder too
            if auth_session.revoked_at is None:
                auth_session.revoked_at, auth_session.revoked_reason = _now(), "refresh_reuse"
            reused = auth_session.id
        elif auth_session.revoked_at is not None or auth_session.expires_at <= _now() or not user.is_active:
            raise Unauthorized(BAD_REFRESH)
        else:
            token.used_at = _now()
            new_raw = secrets.token_urlsafe(32)
            session.add(RefreshToken(token_hash=token_hash(new_raw), session_id=auth_session.id))
    if reused is not None:
        await _kill_access_tokens(ctx, [reused])
        raise Unauthorized("This refresh token was already used; the session has been ended. Sign in again.")
    return await _tokens(rt, user, auth_session.id, new_raw)


def _sid(principal: Principal) -> uuid.UUID | None:
    try:
        return uuid.UUID(principal.session_id)
    except ValueError:
        return None


async def logout(*, ctx: AuthContext, session: AsyncSession, principal: Principal) -> None:
    """End the caller's session: its refresh token and every access token of it stop working."""
    sid = _sid(principal)
    if sid is not None:
        async with session.begin():
            await session.execute(
                sa.update(AuthSession)
                .where(
                    AuthSession.id == sid,
                    AuthSession.user_id == principal.user_id,
                    AuthSession.revoked_at.is_(None),
                )
                .values(revoked_at=_now(), revoked_reason="logout")
            )
    rt = ctx.state
    await revoke_session(
        ctx.redis, rt.settings.redis_prefix, principal.session_id, ttl_seconds=rt.settings.access_token_ttl
    )


async def get_user(*, session: AsyncSession, user_id: uuid.UUID) -> User:
    """The user, or 404."""
    user = await session.get(User, user_id)
    if user is None:
        raise NotFound("This account does not exist.")
    return user


async def update_profile(*, session: AsyncSession, user_id: uuid.UUID, body: UserUpdate) -> User:
    """Change name, phone or addresses; nothing else can be set this way."""
    changes = body.model_dump(exclude_unset=True, mode="json")
    for key in ("name", "addresses"):  # not nullable: null means "leave as is", never a NULL row
        if changes.get(key, "") is None:
            changes.pop(key)
    if body.addresses is not None:
        changes["addresses"] = addresses.from_profile(body.addresses)
    async with session.begin():
        user = await get_user(session=session, user_id=user_id)
        for field, value in changes.items():
            setattr(user, field, value)
    return user


async def change_password(
    *, ctx: AuthContext, session: AsyncSession, principal: Principal, current: str, new: str
) -> None:
    """Set a new password after checking the current one; other sessions end."""
    rt = ctx.state
    s = rt.settings
    check_policy(new, field="new_password")
    async with session.begin():
        user = await get_user(session=session, user_id=principal.user_id)
    # a stolen access token must not buy unlimited guesses at the password it cannot change without
    session_address = f"session:{principal.session_id}"
    await throttle.claim_attempt(
        ctx,
        account=user.email,
        address=session_address,
        free=s.login_free_failures,
        max_delay=s.login_delay_max,
        memory=s.login_failures_window,
    )
    if not await rt.passwords.verify(user.password_hash, current):
        await throttle.add_failure(
            ctx, scope="login-fail", subject=user.email, window=s.login_failures_window
        )
        raise BadRequest(
            "The current password is not correct.",
            type_="wrong-password",
            errors=[{"field": "current_password", "message": "not correct", "type": "wrong_password"}],
        )
    await throttle.forgive(ctx, account=user.email, address=session_address)
    if current == new:
        raise BadRequest("The new password must differ from the current one.")
    new_hash = await rt.passwords.hash(new)
    async with session.begin():
        await session.execute(sa.update(User).where(User.id == user.id).values(password_hash=new_hash))
        sids = await _revoke_sessions(
            session, user_id=user.id, reason="password_changed", keep=_sid(principal)
        )
    await _kill_access_tokens(ctx, sids)


async def set_password(
    *, ctx: AuthContext, session: AsyncSession, user: User, password_hash: str, reason: str
) -> None:
    """Replace a password (reset) and end every session of the user."""
    async with session.begin():
        await session.execute(
            sa.update(User).where(User.id == user.id).values(password_hash=password_hash, email_verified=True)
        )
        sids = await _revoke_sessions(session, user_id=user.id, reason=reason)
    await _kill_access_tokens(ctx, sids, user_id=user.id)


async def list_users(
    *,
    session: AsyncSession,
    page: int,
    page_size: int,
    q: str | None,
    role: str | None,
    is_active: bool | None,
    ids: list[uuid.UUID] | None = None,
) -> UserPage:
    """A page of accounts, newest first, searched by email or name."""
    where: list[sa.ColumnElement[bool]] = []
    if ids:
        where.append(User.id.in_(ids))
    if q:
        pattern = "%" + q.strip().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        where.append(sa.or_(User.email.ilike(pattern, escape="\\"), User.name.ilike(pattern, escape="\\")))
    if role is not None:
        where.append(User.role == role)
    if is_active is not None:
        where.append(User.is_active.is_(is_active))
    total = await session.scalar(sa.select(sa.func.count()).select_from(User).where(*where))
    rows = await session.scalars(
        sa.select(User)
        .where(*where)
        .order_by(User.created_at.desc(), User.id)
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return UserPage(
        items=[UserPublic.model_validate(u) for u in rows],
        total=int(total or 0),
        page=page,
        page_size=page_size,
    )


async def admin_update(
    *, ctx: AuthContext, session: AsyncSession, admin: Principal, user_id: uuid.UUID, body: AdminUserUpdate
) -> User:
    """Change a user's role or block/unblock them; a role change or a block ends their sessions."""
    if user_id == admin.user_id and (body.is_active is False or body.role == "user"):
        raise Conflict("Admins cannot block or demote themselves; ask another admin.")
    async with session.begin():
        user = await session.get(User, user_id, with_for_update=True)
        if user is None:
            raise NotFound("This account does not exist.")
        ends_sessions = (body.role is not None and body.role != user.role) or (
            body.is_active is False and user.is_active
        )
        if body.role is not None:
            user.role = body.role
        if body.is_active is not None:
            user.is_active = body.is_active
        sids = (
            await _revoke_sessions(session, user_id=user.id, reason="admin_change") if ends_sessions else []
        )
    if ends_sessions:
        await _kill_access_tokens(ctx, sids, user_id=user.id)
    return user


async def make_admin(
    *, session: AsyncSession, passwords: Passwords, email: str, password: str, name: str | None
) -> tuple[User, bool]:
    """Create an admin account, or promote (and re-password) an existing one; True when created."""
    check_policy(password)
    password_hash = await passwords.hash(password)
    async with session.begin():
        user = await session.scalar(sa.select(User).where(User.email == email).with_for_update())
        created = user is None
        if user is None:
            user = User(
                id=uuid.uuid4(),
                email=email,
                name=name or email.split("@")[0],
                password_hash=password_hash,
                role="admin",
                addresses=[],
                email_verified=True,
            )
            session.add(user)
            await publish_in(session, user_registered(user))
        else:
            user.role, user.is_active, user.password_hash = "admin", True, password_hash
            if name:
                user.name = name
        await session.flush()
    return user, created


async def purge_sessions(*, session: AsyncSession, keep_revoked: timedelta) -> int:
    """Delete sessions past their end (their refresh tokens go with them); returns how many."""
    async with session.begin():
        result = await session.execute(
            sa.delete(AuthSession).where(
                sa.or_(AuthSession.expires_at < _now(), AuthSession.revoked_at < _now() - keep_revoked)
            )
        )
    return int(cast("CursorResult[Any]", result).rowcount or 0)
