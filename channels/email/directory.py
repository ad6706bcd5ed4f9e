"""Which conversation an email belongs to: a read model folded from the global log, caught
up on every lookup (several processes may share one database).

It answers what routing needs: the conversation and leg a Message-ID was recorded on
(received or sent), the open email thread of an address, and the open conversation where an
address is a verified identity (`mailto:` subject). An address match only *links*; it never
grants a verification level (that takes a handoff token or a verification step).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from threadline.channels.email.events import EmailReceived, EmailSent
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import IdentityVerified, LegClosed, LegOpened

PAGE = 500
CHANNEL = "email"


class GlobalLog(Protocol):
    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


@dataclass(frozen=True, slots=True)
class Thread:
    conversation_id: str
    leg_id: str


def subject_for(address: str) -> str:
    return f"mailto:{address.lower()}"


def transport_ref(address: str) -> str:
    return f"email:{address.lower()}"


class EmailDirectory:
    def __init__(self, log: GlobalLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._position = 0
        self._closed: set[str] = set()
        self._last: dict[str, int] = {}
        self._messages: dict[str, Thread] = {}
        self._threads: dict[str, Thread] = {}
        self._legs: dict[tuple[str, str], str] = {}
        self._verified: dict[str, set[str]] = {}
        # conversation -> its latest email thread (for replies the operator sends)
        self._latest: dict[str, tuple[Thread, str, str]] = {}

    def message(self, message_id: str) -> Thread | None:
        """Where a Message-ID was recorded, if that conversation is still open."""
        with self._lock:
            self._catch_up()
            found = self._messages.get(message_id)
            return found if found and found.conversation_id not in self._closed else None

    def known(self, message_id: str) -> bool:
        with self._lock:
            self._catch_up()
            return message_id in self._messages

    def thread(self, address: str) -> Thread | None:
        with self._lock:
            self._catch_up()
            found = self._threads.get(address.lower())
            return found if found and found.conversation_id not in self._closed else None

    def verified_conversation(self, address: str) -> str | None:
        with self._lock:
            self._catch_up()
            open_ = [c for c in self._verified.get(address.lower(), ()) if c not in self._closed]
            return max(open_, key=lambda c: self._last.get(c, 0)) if open_ else None

    def latest_mail(self, conversation_id: str) -> tuple[Thread, str, str] | None:
        """(thread, address, Message-ID) of the conversation's latest mail, received or sent."""
        with self._lock:
            self._catch_up()
            return self._latest.get(conversation_id)

    def _catch_up(self) -> None:
        while True:
            batch = self._log.read_all(after=self._position, limit=PAGE)
            if not batch:
                return
            self._apply(batch)
            self._position = batch[-1].sequence

    def _apply(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            cid, leg, data = event.conversation_id, event.leg_id or "", event.data
            self._last[cid] = event.sequence
            if event.type == "ConversationResolved":
                self._closed.add(cid)
            elif isinstance(data, EmailReceived | EmailSent):
                thread = Thread(cid, leg)
                self._messages[data.message_id] = thread
                address = data.sender if isinstance(data, EmailReceived) else data.to
                self._latest[cid] = (thread, address, data.message_id)
            elif isinstance(data, IdentityVerified) and data.subject.startswith("mailto:"):
                self._verified.setdefault(data.subject[7:].lower(), set()).add(cid)
            elif isinstance(data, LegOpened) and data.channel == CHANNEL and data.transport_ref:
                address = data.transport_ref.partition(":")[2].lower()
                self._threads[address] = Thread(cid, leg)
                self._legs[(cid, leg)] = address
            elif isinstance(data, LegClosed):
                address = self._legs.pop((cid, leg), "")
                if self._threads.get(address) == Thread(cid, leg):
                    del self._threads[address]
