"""Password hashing (argon2id, off the event loop) and the password policy."""

from __future__ import annotations

import asyncio
import string

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError

from libs.common.errors import Unprocessable

MIN_LENGTH = 8
MAX_LENGTH = 256


class Passwords:
    """An argon2id hasher whose CPU-heavy calls run in worker threads."""

    def __init__(self, *, memory_kib: int, time_cost: int, parallelism: int) -> None:
        self._ph = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID
        )
        self._dummy: str | None = None

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(self._ph.hash, password)

    async def verify(self, stored: str, password: str) -> bool:
        def check() -> bool:
            try:
                return self._ph.verify(stored, password)
            except (VerificationError, InvalidHashError):
                return False

        return await asyncio.to_thread(check)

    async def burn(self, password: str) -> None:
        """Spend one verification on nothing, so an unknown email costs what a wrong password does."""
        if self._dummy is None:
            self._dummy = await self.hash("not-a-real-password-0")
        await self.verify(self._dummy, password)

    def needs_rehash(self, stored: str) -> bool:
        try:
            return self._ph.check_needs_rehash(stored)
        except InvalidHashError:
            return True


def check_policy(password: str, *, field: str = "password") -> None:
    """Refuse a weak password with a message the user can act on (422)."""
    problem = None
    if len(password) < MIN_LENGTH:
        problem = f"The password must have at least {MIN_LENGTH} characters."
    elif len(password) > MAX_LENGTH:
        problem = f"The password must have at most {MAX_LENGTH} characters."
    else:
        classes = sum(
            [
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() or c in string.punctuation for c in password),
            ]
        )
        if classes < 2:
            problem = (
                "The password must mix at least two kinds of characters "
                "(lower-case, upper-case, digits, symbols)."
            )
    if problem is not None:
        raise Unprocessable(
            problem,
            title="Weak password",
            type_="weak-password",
            errors=[{"field": field, "message": problem, "type": "weak_password"}],
        )
