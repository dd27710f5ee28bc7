"""End-user passwords: argon2id (argon2-cffi) with OWASP's recommended minimum parameters
(19 MiB, 2 iterations, 1 lane), about 30 ms a hash here. Verification runs in a worker
thread so a sign-in never stalls the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # argon2 takes any length; this bounds the work an attacker buys
# Compared against when the user does not exist, so both cases cost the same. Written
# out rather than hashed at import (~40 ms in every `tiergate` process); hashed afresh
# should HASHER's parameters ever differ from the ones it carries.
_DUMMY_HASH = (
    "$argon2id$v=19$m=19456,t=2,p=1$ewWG1Kea1bJiSkyvY1aaPQ"
    "$2FpfDAcgpv6jYtFSqeuz/obuKkStDDWfiDzX29MTkAs"
)
if HASHER.check_needs_rehash(_DUMMY_HASH):
    _DUMMY_HASH = HASHER.hash("tiergate-no-such-user")


def hash_password(password: str) -> str:
    if not MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH:
        raise ValueError(
            f"a password has {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )
    return HASHER.hash(password)


def _verify(stored: str | None, password: str) -> bool:
    try:
        return HASHER.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


async def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches `stored` (None: no such user; still costs one hash)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        password = password[:MAX_PASSWORD_LENGTH] + "\x00"  # never matches, same cost
    return await asyncio.to_thread(_verify, stored, password)
