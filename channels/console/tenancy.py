"""Which tenant a conversation belongs to, read once per process.

Tenant-scoped console routes answer 404 for another tenant's conversation, which needs the
conversation's tenant: its first event's. A conversation never changes tenant and its first
event is never rewritten by the ledger, so a found answer is cached (bounded, least recently
used out first). "No such conversation" and an unreadable first record are never cached: the
conversation may be started a moment later, and must then be seen with its own tenant.
"""

from __future__ import annotations

import threading
from collections import OrderedDict

from threadline.channels.console.ports import ConversationLog
from threadline.ledger.errors import IntegrityViolationError

# About 100 bytes an entry (an id up to 200 characters, a tenant up to 64): a few MB at most.
MAX_ENTRIES = 50_000


def read_tenant(log: ConversationLog, conversation_id: str) -> str | None:
    """The tenant a conversation was started for (its first event), None when it does not
    exist or its first record does not read."""
    try:
        first = log.read(conversation_id, after=0, limit=1)
    except IntegrityViolationError:
        return None
    if not first:
        return None
    return str(getattr(first[0].data, "tenant", "default"))


class ConversationTenants:
    """`read_tenant` with a per-process LRU of the answers found. Thread-safe: routes call
    it from worker threads."""

    def __init__(self, log: ConversationLog, max_entries: int = MAX_ENTRIES) -> None:
        self._log = log
        self._max = max_entries
        self._known: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def tenant_of(self, conversation_id: str) -> str | None:
        with self._lock:
            tenant = self._known.get(conversation_id)
            if tenant is not None:
                self._known.move_to_end(conversation_id)
                return tenant
        tenant = read_tenant(self._log, conversation_id)  # outside the lock: it is I/O
        if tenant is not None:
            with self._lock:
                self._known[conversation_id] = tenant
                self._known.move_to_end(conversation_id)
                while len(self._known) > self._max:
                    self._known.popitem(last=False)
        return tenant

    def __len__(self) -> int:
        with self._lock:
            return len(self._known)
