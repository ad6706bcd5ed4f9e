"""Who is calling and what they may touch.

- An adapter API key (tenant T) reaches every conversation of tenant T; a conversation of
  another tenant answers 404, as if it did not exist.
- A visitor token reaches exactly the conversation it was issued for; any other answers 403.
- Nobody else reaches any conversation.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass

from threadline.access.errors import ForbiddenError, NotFoundError, UnauthenticatedError
from threadline.ledger.events import ConversationStarted
from threadline.ledger.store import Ledger


@dataclass(frozen=True, slots=True)
class KeyPrincipal:
    key_id: str
    name: str
    tenant: str
    scopes: frozenset[str] = frozenset()

    @property
    def actor(self) -> str:
        return f"adapter:{self.name}"


@dataclass(frozen=True, slots=True)
class VisitorPrincipal:
    conversation_id: str
    leg_id: str
    tenant: str

    @property
    def actor(self) -> str:
        return "visitor"


Principal = KeyPrincipal | VisitorPrincipal


class TenantDirectory:
    """Maps a conversation to its tenant (from its ConversationStarted event). A conversation
    never changes tenant, so found answers are cached; unknown ones are not."""

    def __init__(self, ledger: Ledger, max_entries: int = 100_000) -> None:
        self._ledger = ledger
        self._max = max_entries
        self._cache: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def remember(self, conversation_id: str, tenant: str) -> None:
        with self._lock:
            self._cache[conversation_id] = tenant
            while len(self._cache) > self._max:
                self._cache.popitem(last=False)

    def cached_tenant(self, conversation_id: str) -> str | None:
        """The tenant if it is cached (no ledger read: safe on the event loop)."""
        with self._lock:
            return self._cache.get(conversation_id)

    def tenant_of(self, conversation_id: str) -> str | None:
        """Blocking (may read the ledger): call from a worker thread."""
        with self._lock:
            tenant = self._cache.get(conversation_id)
        if tenant is not None:
            return tenant
        first = self._ledger.read(conversation_id, after=0, limit=1)
        if not first or not isinstance(first[0].data, ConversationStarted):
            return None
        self.remember(conversation_id, first[0].data.tenant)
        return first[0].data.tenant


def authorize(
    principal: Principal | None, conversation_id: str, directory: TenantDirectory
) -> None:
    """Raises unless `principal` may act on `conversation_id` (which must exist)."""
    if principal is None:
        raise UnauthenticatedError("missing credentials: send Authorization: Bearer <token>")
    if isinstance(principal, VisitorPrincipal):
        if principal.conversation_id != conversation_id:
            raise ForbiddenError("this visitor token is for another conversation")
        if directory.tenant_of(conversation_id) is None:
            raise NotFoundError("conversation not found")
        return
    if directory.tenant_of(conversation_id) != principal.tenant:
        raise NotFoundError("conversation not found")


def authorize_cached(
    principal: Principal | None, conversation_id: str, directory: TenantDirectory
) -> bool:
    """`authorize` without reading the ledger: False if the conversation's tenant is not
    cached (call `authorize` in a worker thread then); raises as `authorize` does."""
    if principal is not None and directory.cached_tenant(conversation_id) is None:
        return False
    authorize(principal, conversation_id, directory)  # answered from the cache now
    return True


def require_key(principal: Principal | None) -> KeyPrincipal:
    if principal is None:
        raise UnauthenticatedError("missing credentials: send Authorization: Bearer <API key>")
    if not isinstance(principal, KeyPrincipal):
        raise ForbiddenError("this endpoint needs an adapter API key")
    return principal
