"""First utterances composed when a handoff is accepted, kept until its token is redeemed.

Composing at acceptance (the visitor's click) lets the voice channel synthesise the audio
while the browser is still setting up its call, so the first frame can leave as soon as the
leg connects (`channels/voice/presynth.py`). `redeem` uses an entry only if the conversation
has not moved since it was composed — same stream version, level, channel and direction;
otherwise it composes again from the context as it is then, so a sentence about a stale
context is never spoken. An entry is used at most once.

Entries live in this process only: a redeem on another replica finds nothing and composes
afresh from the stream, which stays the only state. The cache is bounded and an entry lives
no longer than the handoff's token: the handoff expiry scan (every few seconds) purges
expired entries, drops those whose handoff ended on any replica, and drops a conversation's
entries when a SubjectErased is appended to it.

Erasure drops a conversation's entries at once when it is appended through this process's
`Ledger` (`watch`), and within one expiry scan when another process appended it. An entry
composed from a context read before an erasure but put after it is refused (`put(...,
since=erasures)`): the erased text never re-enters. Whoever keeps something made from an
entry (the voice channel's pre-synthesised audio) subscribes with `on_drop` and is told the
conversation whenever its entries go for an erasure.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from threadline.handoff.first_utterance import Utterance
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import HandoffChannel
from threadline.ledger.store import Ledger

log = logging.getLogger(__name__)
MAX_ENTRIES = 256
ERASED = "SubjectErased"
# Erased conversation ids remembered for `put(since=…)` (ids only, nothing personal).
_ERASED_MEMORY = 1024


@dataclass(frozen=True, slots=True)
class PreparedUtterance:
    conversation_id: str
    handoff_id: str
    channel: HandoffChannel
    level: int
    version: int  # the stream version the context was read at
    utterance: Utterance
    expires_at: datetime  # the handoff token's expiry: useless after it

    @property
    def text(self) -> str:
        return self.utterance.text


class ErasureLog:
    """The erasures seen here, numbered, by conversation (ids only, the last `memory`): what
    was composed from a context read before an erasure of its conversation is refused.
    `count` is read before the context; `after(conversation_id, count)` then says whether an
    erasure came since. Callable from any thread."""

    def __init__(self, memory: int = _ERASED_MEMORY) -> None:
        self.count = 0
        self._memory = memory
        self._at: OrderedDict[str, int] = OrderedDict()  # conversation -> erasure number
        self._lock = threading.Lock()

    def record(self, conversation_id: str) -> None:
        with self._lock:
            self.count += 1
            self._at.pop(conversation_id, None)
            self._at[conversation_id] = self.count
            while len(self._at) > self._memory:
                self._at.popitem(last=False)

    def after(self, conversation_id: str, since: int | None) -> bool:
        """True if `conversation_id` had an erasure after `since` (None: nothing to check)."""
        if since is None:
            return False
        with self._lock:
            return self._at.get(conversation_id, 0) > since


class PreparedUtterances:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, str], PreparedUtterance] = OrderedDict()
        self._lock = threading.Lock()
        self._erased = ErasureLog()
        self._on_drop: list[Callable[[str], None]] = []
        # SubjectErased events already acted on: one appended here reaches `erased` twice
        # (`watch`, then the expiry scan), and a second drop would discard what was composed
        # from the erased context since, and refuse what is being composed now.
        self._handled: OrderedDict[UUID, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def erasures(self) -> int:
        """Erasures seen so far: read before composing, passed to `put(since=…)`."""
        return self._erased.count

    def put(self, prepared: PreparedUtterance, now: datetime, *, since: int | None = None) -> bool:
        """Keeps `prepared`; False (nothing kept) if its conversation had an erasure after
        `since` (the `erasures` count read before the context it was composed from)."""
        key = (prepared.conversation_id, prepared.handoff_id)
        with self._lock:
            if self._erased.after(prepared.conversation_id, since):
                return False
            self._purge(now)
            self._entries.pop(key, None)
            self._entries[key] = prepared
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)  # the oldest acceptance goes first
        return True

    def purge(self, now: datetime) -> int:
        """Drops the entries whose token expired (the handoff expiry scan calls this every
        few seconds: a quiet server does not keep text restating orders and names)."""
        with self._lock:
            return self._purge(now)

    def discard(self, conversation_id: str, handoff_id: str) -> None:
        """The handoff was completed (on any replica), expired or declined: never used."""
        with self._lock:
            self._entries.pop((conversation_id, handoff_id), None)

    def drop_conversation(self, conversation_id: str) -> int:
        """A subject of the conversation was erased: its prepared text goes with it, and the
        `on_drop` listeners are told (whatever they made from it goes too)."""
        with self._lock:
            keys = [k for k in self._entries if k[0] == conversation_id]
            for k in keys:
                del self._entries[k]
            self._erased.record(conversation_id)  # under the lock: `put` checks atomically
            listeners = list(self._on_drop)
        for listener in listeners:
            try:
                listener(conversation_id)
            except Exception:  # one consumer failing must not keep the others' copies
                log.exception("an erasure listener of the prepared first utterances failed")
        return len(keys)

    def erased(self, event: RecordedEvent) -> None:
        """`event` (a SubjectErased) drops its conversation's entries, once however often it
        is reported."""
        with self._lock:
            if event.event_id in self._handled:
                return
            self._handled[event.event_id] = None
            while len(self._handled) > _ERASED_MEMORY:
                self._handled.popitem(last=False)
        self.drop_conversation(event.conversation_id)

    def on_drop(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Calls `listener(conversation_id)` (in the erasing thread) when a conversation's
        entries are dropped for an erasure. Returns unsubscribe."""
        with self._lock:
            self._on_drop.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._on_drop:
                    self._on_drop.remove(listener)

        return unsubscribe

    def watch(self, ledger: Ledger) -> Callable[[], None]:
        """Drops a conversation's entries as soon as SubjectErased is appended to it through
        `ledger` (appends by other processes reach `drop_conversation` from the expiry scan).
        Returns unsubscribe."""

        def listener(events: list[RecordedEvent]) -> None:
            for e in events:
                if e.type == ERASED:
                    self.erased(e)

        return ledger.subscribe(listener)

    def _purge(self, now: datetime) -> int:
        keys = [k for k, e in self._entries.items() if e.expires_at <= now]
        for k in keys:
            del self._entries[k]
        return len(keys)

    def take(
        self,
        conversation_id: str,
        handoff_id: str,
        *,
        version: int,
        level: int,
        channel: HandoffChannel,
        inbound: bool,
        now: datetime,
    ) -> Utterance | None:
        """The prepared utterance if it was composed from exactly this state; the entry is
        removed either way (a stale one is never useful again)."""
        with self._lock:
            entry = self._entries.pop((conversation_id, handoff_id), None)
        if entry is None or inbound or entry.expires_at <= now:
            return None
        if (entry.version, entry.level, entry.channel) != (version, level, channel):
            return None
        return entry.utterance
