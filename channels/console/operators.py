"""Operator accounts and their login sessions.

An operator has a name and an argon2id password hash; a login creates a session whose random
token goes to the browser in an HttpOnly cookie while the store keeps only its SHA-256 digest,
so a copy of the database opens no live session. Storage is a small port (`OperatorStore`)
with memory, SQLite and PostgreSQL implementations chosen by URL.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Protocol

from threadline.channels.console import passwords
from threadline.channels.console.errors import (
    AuthenticationFailedError,
    InvalidOperatorError,
    OperatorExistsError,
    OperatorNotFoundError,
    TooManyAttemptsError,
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
# Same rule as an API key's tenant (access.keys), so the two name the same tenants.
TENANT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
ALL_TENANTS = "*"

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Operator:
    name: str
    password_hash: str
    created_at: datetime
    # The tenant whose conversations the operator sees; "*" (operators made before tenants
    # existed, or a deliberate supervisor account) defers to the console's setting.
    tenant: str = ALL_TENANTS


@dataclass(frozen=True, slots=True)
class Session:
    token_digest: str
    operator: str
    created_at: datetime
    expires_at: datetime


class OperatorStore(Protocol):
    """Where accounts and sessions live. Every implementation passes the same contract tests."""

    def add_operator(self, operator: Operator) -> None:
        """Raises OperatorExistsError when the name is taken."""

    def get_operator(self, name: str) -> Operator | None: ...

    def list_operators(self) -> list[Operator]: ...

    def set_password_hash(self, name: str, password_hash: str) -> None:
        """Raises OperatorNotFoundError."""

    def delete_operator(self, name: str) -> None:
        """Deletes the operator and every session of theirs; raises OperatorNotFoundError."""

    def add_session(self, session: Session) -> None: ...

    def get_session(self, token_digest: str) -> Session | None: ...

    def delete_session(self, token_digest: str) -> None: ...

    def delete_sessions_of(self, name: str) -> None: ...

    def delete_expired_sessions(self, now: datetime) -> int: ...

    def set_presence(self, name: str, tenant: str, available: bool, now: datetime) -> None:
        """Marks the operator (un)available for `tenant` ('*': every tenant) as of `now`."""

    def available_operators(self, tenant: str | None, since: datetime) -> list[str]:
        """Operators marked available and seen after `since` (presence is a heartbeat)."""

    def close(self) -> None: ...


class MemoryOperatorStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._operators: dict[str, Operator] = {}
        self._sessions: dict[str, Session] = {}
        self._presence: dict[str, tuple[str, bool, datetime]] = {}

    def add_operator(self, operator: Operator) -> None:
        with self._lock:
            if operator.name in self._operators:
                raise OperatorExistsError(f"operator {operator.name!r} already exists")
            self._operators[operator.name] = operator

    def get_operator(self, name: str) -> Operator | None:
        with self._lock:
            return self._operators.get(name)

    def list_operators(self) -> list[Operator]:
        with self._lock:
            return sorted(self._operators.values(), key=lambda op: op.name)

    def set_password_hash(self, name: str, password_hash: str) -> None:
        with self._lock:
            current = self._operators.get(name)
            if current is None:
                raise OperatorNotFoundError(f"no operator {name!r}")
            self._operators[name] = Operator(
                name, password_hash, current.created_at, current.tenant
            )

    def delete_operator(self, name: str) -> None:
        with self._lock:
            if self._operators.pop(name, None) is None:
                raise OperatorNotFoundError(f"no operator {name!r}")
            self._drop_sessions_locked(name)
            self._presence.pop(name, None)

    def add_session(self, session: Session) -> None:
        with self._lock:
            self._sessions[session.token_digest] = session

    def get_session(self, token_digest: str) -> Session | None:
        with self._lock:
            return self._sessions.get(token_digest)

    def delete_session(self, token_digest: str) -> None:
        with self._lock:
            self._sessions.pop(token_digest, None)

    def delete_sessions_of(self, name: str) -> None:
        with self._lock:
            self._drop_sessions_locked(name)

    def delete_expired_sessions(self, now: datetime) -> int:
        with self._lock:
            gone = [d for d, s in self._sessions.items() if s.expires_at <= now]
            for digest in gone:
                del self._sessions[digest]
            return len(gone)

    def set_presence(self, name: str, tenant: str, available: bool, now: datetime) -> None:
        with self._lock:
            self._presence[name] = (tenant, available, now)

    def available_operators(self, tenant: str | None, since: datetime) -> list[str]:
        with self._lock:
            return sorted(
                name
                for name, (t, on, seen) in self._presence.items()
                if on and seen > since and (tenant is None or t in (tenant, "*"))
            )

    def close(self) -> None:
        return None

    def _drop_sessions_locked(self, name: str) -> None:
        for digest in [d for d, s in self._sessions.items() if s.operator == name]:
            del self._sessions[digest]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def check_tenant(tenant: str) -> str:
    if tenant != ALL_TENANTS and not TENANT_RE.fullmatch(tenant):
        raise InvalidOperatorError(
            "tenant must be 1-64 letters, digits, space, '.', '_' or '-' (or '*' for every tenant)"
        )
    return tenant


def check_name(name: str) -> str:
    if not NAME_RE.fullmatch(name):
        raise InvalidOperatorError(
            "operator name must be 2-64 characters of a-z, 0-9, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class LoginFailureLog(Protocol):
    """Failed logins kept where every replica sees them (the SQL operator stores)."""

    def recent_login_failures(self, key: str, since: datetime) -> tuple[int, datetime | None]:
        """How many failures of `key` are later than `since`, and the oldest of them."""
        ...

    def add_login_failures(
        self, keys: Sequence[str], at: datetime, forget_before: datetime
    ) -> None: ...

    def clear_login_failures(self, key: str) -> None: ...


class LoginThrottle:
    """Counts failed logins per key (operator name, client address) in a sliding window.

    With `failures` (the SQL operator store) the count is shared by every replica on the
    database, so N replicas do not grant N × the attempts (issue 18); without it (memory
    store: one process) it is kept here. argon2's cost per attempt does the rest."""

    def __init__(
        self,
        max_failures: int,
        window_seconds: int,
        clock: Clock = utcnow,
        failures: LoginFailureLog | None = None,
    ) -> None:
        self._max = max_failures
        self._window = timedelta(seconds=window_seconds)
        self._clock = clock
        self._shared = failures
        self._lock = threading.Lock()
        self._failures: dict[str, deque[datetime]] = {}

    def check(self, *keys: str) -> None:
        now = self._clock()
        for key in keys:
            count, oldest = self._recent(key, now)
            if count >= self._max and oldest is not None:
                wait = (oldest + self._window - now).total_seconds()
                raise TooManyAttemptsError(max(1, int(wait) + 1))

    def fail(self, *keys: str) -> None:
        now = self._clock()
        if self._shared is not None:
            self._shared.add_login_failures(keys, now, now - self._window)
            return
        with self._lock:
            for key in keys:
                self._recent_locked(key, now).append(now)

    def succeed(self, key: str) -> None:
        if self._shared is not None:
            self._shared.clear_login_failures(key)
            return
        with self._lock:
            self._failures.pop(key, None)

    def _recent(self, key: str, now: datetime) -> tuple[int, datetime | None]:
        if self._shared is not None:
            return self._shared.recent_login_failures(key, now - self._window)
        with self._lock:
            recent = self._recent_locked(key, now)
            return len(recent), (recent[0] if recent else None)

    def _recent_locked(self, key: str, now: datetime) -> deque[datetime]:
        recent = self._failures.setdefault(key, deque())
        while recent and recent[0] <= now - self._window:
            recent.popleft()
        return recent


class OperatorAccounts:
    """Creating operators, logging them in and resolving their session cookies."""

    def __init__(
        self,
        store: OperatorStore,
        session_ttl_seconds: int,
        throttle: LoginThrottle,
        clock: Clock = utcnow,
    ) -> None:
        self.store = store
        self._ttl = timedelta(seconds=session_ttl_seconds)
        self._throttle = throttle
        self._clock = clock

    def create(self, name: str, password: str, tenant: str = ALL_TENANTS) -> Operator:
        operator = Operator(
            check_name(name), passwords.hash_password(password), self._clock(), check_tenant(tenant)
        )
        self.store.add_operator(operator)
        return operator

    def set_password(self, name: str, password: str) -> None:
        self.store.set_password_hash(name, passwords.hash_password(password))
        self.store.delete_sessions_of(name)

    def delete(self, name: str) -> None:
        self.store.delete_operator(name)

    def login(self, name: str, password: str, client: str = "unknown") -> str:
        """Returns a new session token; raises AuthenticationFailedError or TooManyAttemptsError."""
        keys = (f"name:{name}", f"client:{client}")
        self._throttle.check(*keys)
        operator = self.store.get_operator(name) if NAME_RE.fullmatch(name) else None
        stored = operator.password_hash if operator else None
        if not passwords.verify_password(stored, password) or operator is None:
            self._throttle.fail(*keys)
            raise AuthenticationFailedError("wrong operator name or password")
        self._throttle.succeed(keys[0])
        if passwords.needs_rehash(operator.password_hash):
            self.store.set_password_hash(name, passwords.hash_password(password))
        now = self._clock()
        self.store.delete_expired_sessions(now)
        token = secrets.token_urlsafe(32)
        self.store.add_session(Session(token_digest(token), name, now, now + self._ttl))
        return token

    def resolve(self, token: str | None) -> str | None:
        """The operator name a session token belongs to, or None (unknown, expired, removed)."""
        operator = self.resolve_operator(token)
        return operator.name if operator else None

    def resolve_operator(self, token: str | None) -> Operator | None:
        """The operator (with their tenant) a session token belongs to, or None."""
        if not token or len(token) > 200:
            return None
        session = self.store.get_session(token_digest(token))
        if session is None:
            return None
        if session.expires_at <= self._clock():
            self.store.delete_session(session.token_digest)
            return None
        return self.store.get_operator(session.operator)

    def logout(self, token: str | None) -> None:
        if token:
            self.store.delete_session(token_digest(token))
