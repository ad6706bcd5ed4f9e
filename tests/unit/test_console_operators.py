"""Operator accounts: the store contract (every backend), hashing, sessions, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from threadline.channels.console import passwords
from threadline.channels.console.errors import (
    AuthenticationFailedError,
    InvalidOperatorError,
    TooManyAttemptsError,
)
from threadline.channels.console.operators import (
    LoginThrottle,
    MemoryOperatorStore,
    Operator,
    OperatorAccounts,
    token_digest,
)

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
PASSWORD = "correct horse battery"


class FakeClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def test_password_hash_is_argon2id_and_verifies() -> None:
    hashed = passwords.hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert passwords.verify_password(hashed, PASSWORD)
    assert not passwords.verify_password(hashed, PASSWORD + "!")
    assert not passwords.verify_password("not a hash", PASSWORD)
    assert not passwords.verify_password(None, PASSWORD)
    assert passwords.hash_password(PASSWORD) != hashed  # salted


@pytest.mark.parametrize("bad", ["short", " leading space pw", "x" * 1025])
def test_password_policy(bad: str) -> None:
    with pytest.raises(InvalidOperatorError):
        passwords.hash_password(bad)


def accounts(clock: FakeClock, ttl: int = 3600, max_failures: int = 3) -> OperatorAccounts:
    return OperatorAccounts(
        MemoryOperatorStore(), ttl, LoginThrottle(max_failures, 60, clock), clock
    )


@pytest.mark.parametrize("bad", ["", "A", "Bob", "-bob", "bob smith", "x" * 65, "bob/../x"])
def test_operator_names_are_checked(bad: str) -> None:
    with pytest.raises(InvalidOperatorError):
        accounts(FakeClock()).create(bad, PASSWORD)


def test_login_resolve_logout() -> None:
    clock = FakeClock()
    acc = accounts(clock)
    acc.create("bob", PASSWORD)
    token = acc.login("bob", PASSWORD, "127.0.0.1")
    assert acc.resolve(token) == "bob"
    stored = acc.store.get_session(token_digest(token))
    assert stored is not None
    assert stored.token_digest != token
    acc.logout(token)
    assert acc.resolve(token) is None


def test_sessions_expire() -> None:
    clock = FakeClock()
    acc = accounts(clock, ttl=60)
    acc.create("bob", PASSWORD)
    token = acc.login("bob", PASSWORD)
    clock.now += timedelta(seconds=59)
    assert acc.resolve(token) == "bob"
    clock.now += timedelta(seconds=1)
    assert acc.resolve(token) is None


def test_removed_operator_or_new_password_ends_sessions() -> None:
    acc = accounts(FakeClock())
    acc.create("bob", PASSWORD)
    acc.create("amy", PASSWORD)
    bob, amy = acc.login("bob", PASSWORD), acc.login("amy", PASSWORD)
    acc.set_password("bob", PASSWORD + " two")
    assert acc.resolve(bob) is None
    acc.delete("amy")
    assert acc.resolve(amy) is None
    with pytest.raises(AuthenticationFailedError):
        acc.login("bob", PASSWORD)
    assert acc.resolve(acc.login("bob", PASSWORD + " two")) == "bob"


@pytest.mark.parametrize("token", [None, "", "garbage", "x" * 5000])
def test_unknown_tokens_resolve_to_nobody(token: str | None) -> None:
    acc = accounts(FakeClock())
    acc.create("bob", PASSWORD)
    acc.login("bob", PASSWORD)
    assert acc.resolve(token) is None


def test_wrong_name_or_password_fails_alike() -> None:
    acc = accounts(FakeClock(), max_failures=100)
    acc.create("bob", PASSWORD)
    for name, pw in [("bob", "wrong password!"), ("nobody", PASSWORD), ("BAD NAME", PASSWORD)]:
        with pytest.raises(AuthenticationFailedError) as exc:
            acc.login(name, pw)
        assert str(exc.value) == "wrong operator name or password"


def test_failed_logins_are_throttled_then_released() -> None:
    clock = FakeClock()
    acc = accounts(clock, max_failures=3)
    acc.create("bob", PASSWORD)
    for _ in range(3):
        with pytest.raises(AuthenticationFailedError):
            acc.login("bob", "wrong password!", "10.9.9.9")
    with pytest.raises(TooManyAttemptsError) as exc:
        acc.login("bob", PASSWORD, "127.0.0.2")  # even the right password, from elsewhere
    assert 1 <= exc.value.retry_after <= 61
    clock.now += timedelta(seconds=61)
    assert acc.resolve(acc.login("bob", PASSWORD, "127.0.0.2")) == "bob"


def test_old_hash_parameters_are_upgraded_on_login() -> None:
    from argon2 import PasswordHasher

    acc = accounts(FakeClock())
    weak = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(PASSWORD)
    acc.store.add_operator(Operator("bob", weak, T0))
    acc.login("bob", PASSWORD)
    upgraded = acc.store.get_operator("bob")
    assert upgraded is not None
    assert upgraded.password_hash != weak
    assert not passwords.needs_rehash(upgraded.password_hash)
