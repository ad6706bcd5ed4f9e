"""Password hashing with argon2id (argon2-cffi, RFC 9106 parameters). No crypto of our own."""

from __future__ import annotations

import secrets
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from threadline.channels.console.errors import InvalidOperatorError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher()


@cache
def _dummy_hash() -> str:
    """Verified when the operator does not exist, so that a wrong name costs as long as a
    wrong password and response times do not reveal which names exist."""
    return _hasher.hash(secrets.token_urlsafe(32))


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise InvalidOperatorError(f"password must be at least {MIN_LENGTH} characters")
    if len(password) > MAX_LENGTH:
        raise InvalidOperatorError(f"password must be at most {MAX_LENGTH} characters")
    if password.strip() != password:
        raise InvalidOperatorError("password must not start or end with whitespace")


def hash_password(password: str) -> str:
    check_policy(password)
    return _hasher.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """True when `password` matches; never raises for a wrong or malformed hash."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        matched = _hasher.verify(stored_hash or _dummy_hash(), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    return matched and stored_hash is not None


def needs_rehash(stored_hash: str) -> bool:
    """True when the hash was made with older parameters than the current defaults."""
    return _hasher.check_needs_rehash(stored_hash)
