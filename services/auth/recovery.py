"""Password recovery: a 6-digit OTP by email, exchanged for a single-use reset token.

The OTP lives in Redis only as a keyed hash (HMAC with a secret derived from the signing
key, which Redis never holds: a million guesses against a plain hash would take a Redis
reader milliseconds), with a TTL and a counter of tries. Every refusal reads the same so
the answers say nothing about which emails have accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from libs.common.errors import BadRequest
from services.auth import service, throttle
from services.auth.context import AuthContext
from services.auth.models import User
from services.auth.passwords import check_policy
from services.auth.schemas import ResetToken
from services.auth.signing import KeyRing

BAD_OTP = "The code is wrong or has expired. After 5 wrong tries a new code is needed: ask for one again."
BAD_RESET = "The reset token is not valid, has expired or was already used; start again."

# One round trip decides the try: counted, compared, and the code dropped when used or exhausted.
# ARGV: max tries, then (kid, hash of the guess under that kid) for every key the ring holds,
# so a code keyed before a rotation still works.
_CHECK_OTP = """
local stored = redis.call('HMGET', KEYS[1], 'hash', 'kid')
if not stored[1] then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'tries', 1)
for i = 2, #ARGV, 2 do
  if ARGV[i] == stored[2] and ARGV[i + 1] == stored[1] then redis.call('DEL', KEYS[1]) return 1 end
end
if n >= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
return 0
"""
_OTP_PURPOSE = b"shop auth: password reset code"


def _otp_hash(ring: KeyRing, kid: str, email: str, otp: str) -> str:
    return hmac.new(
        ring.derived_secret(kid, _OTP_PURPOSE), f"{email}:{otp}".encode(), hashlib.sha256
    ).hexdigest()


async def forgot_password(*, ctx: AuthContext, session: AsyncSession, email: str, ip: str) -> None:
    """Email a one-time code when the account exists; the caller learns nothing either way."""
    rt = ctx.state
    s = rt.settings
    await throttle.hit(ctx, scope="forgot-ip", subject=ip, limit=s.forgot_per_ip, window=s.forgot_window)
    await throttle.hit(
        ctx, scope="forgot-email", subject=email, limit=s.forgot_per_email, window=s.forgot_window
    )
    user = await session.scalar(sa.select(User).where(User.email == email))
    if user is None or not user.is_active:
        return
    otp = f"{secrets.randbelow(10**6):06d}"
    key = ctx.key("auth", "otp", email)
    ring = await rt.keys.ring()
    kid = ring.signing_kid
    async with ctx.redis.pipeline(transaction=True) as pipe:
        pipe.delete(key)  # a new code replaces the old one and its tries
        pipe.hset(key, mapping={"hash": _otp_hash(ring, kid, email, otp), "kid": kid, "tries": 0})
        pipe.expire(key, s.otp_ttl)
        await pipe.execute()
    minutes = max(1, s.otp_ttl // 60)
    rt.mailer.send_later(
        to=email,
        subject="Your Shop password reset code",
        body=(
            f"Hello {user.name},\n\nYour code to reset your Shop password is: {otp}\n\n"
            f"It is valid for {minutes} minutes and can be used once. If you did not ask for it, "
            "ignore this email; your password has not changed.\n"
        ),
    )


async def verify_otp(*, ctx: AuthContext, email: str, otp: str, ip: str) -> ResetToken:
    """Exchange a valid code for a short-lived, single-use reset token."""
    rt = ctx.state
    s = rt.settings
    await throttle.hit(
        ctx, scope="verify-ip", subject=ip, limit=s.verify_otp_per_ip, window=s.verify_otp_window
    )
    await throttle.hit(
        ctx, scope="verify-email", subject=email, limit=s.verify_otp_per_email, window=s.verify_otp_window
    )
    ring = await rt.keys.ring()
    guesses = [part for kid in ring.private for part in (kid, _otp_hash(ring, kid, email, otp))]
    ok = await ctx.redis.eval(_CHECK_OTP, 1, ctx.key("auth", "otp", email), s.otp_max_attempts, *guesses)
    if int(ok) != 1:
        raise BadRequest(BAD_OTP, title="Invalid code")
    raw = secrets.token_urlsafe(32)
    await ctx.redis.set(ctx.key("auth", "reset", service.token_hash(raw)), email, ex=s.reset_token_ttl)
    return ResetToken(reset_token=raw, expires_in=s.reset_token_ttl)


async def reset_password(
    *, ctx: AuthContext, session: AsyncSession, reset_token: str, new_password: str
) -> None:
    """Set a new password with a reset token (used up) and end every session of the account."""
    rt = ctx.state
    check_policy(new_password, field="new_password")
    email = await ctx.redis.getdel(ctx.key("auth", "reset", service.token_hash(reset_token)))
    if email is None:
        raise BadRequest(BAD_RESET, title="Invalid reset token")
    email = email.decode() if isinstance(email, bytes) else str(email)
    async with session.begin():
        user = await session.scalar(sa.select(User).where(User.email == email))
    if user is None:
        raise BadRequest(BAD_RESET, title="Invalid reset token")
    password_hash = await rt.passwords.hash(new_password)
    await service.set_password(
        ctx=ctx, session=session, user=user, password_hash=password_hash, reason="password_reset"
    )
    await throttle.clear(ctx, scope="login-fail", subject=email)
