"""Which conversation a phone number belongs to: a small read model folded from the global
log (`Ledger.read_all`), caught up on every lookup so that several processes sharing one
database see each other's appends.

It answers only what routing an inbound message or call needs: the open SMS/WhatsApp thread
of a number, the open conversations where a number is a *verified* identity, a
conversation's verified phone, and which conversation a sent message belongs to.

A number is verified for a conversation when an `IdentityVerified` event's subject names it
(`tel:+15551234567`, see `phone.subject_for`). A conversation is open until
`ConversationResolved`.

`SubjectErased` makes the directory forget the conversation's numbers (its verified phone
and its SMS/WhatsApp threads): a process that folds the log after the erasure reads those
fields as `[erased]` and never learns them, and every replica must route the same way — a
later text or call from the number does not join the erased conversation (issue 18).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from threadline.channels.messaging import phone
from threadline.channels.messaging.events import MessageDeliveryUpdated
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.events import IdentityVerified, LegClosed, LegOpened

PAGE = 500
THREAD_CHANNELS = ("sms", "whatsapp")


class GlobalLog(Protocol):
    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]: ...


@dataclass(frozen=True, slots=True)
class Thread:
    conversation_id: str
    leg_id: str


@dataclass(frozen=True, slots=True)
class OpenThread:
    """An open SMS/WhatsApp leg of a conversation: where an operator's message goes."""

    leg_id: str
    channel: str
    number: str
    provider: str | None  # the provider that last sent on this leg, when known


@dataclass(slots=True)
class _Conversation:
    open: bool = True
    verified_phone: str | None = None
    level: int = 0
    last_sequence: int = 0


class PhoneDirectory:
    def __init__(self, log: GlobalLog) -> None:
        self._log = log
        self._lock = threading.Lock()
        self._position = 0
        self._conversations: dict[str, _Conversation] = {}
        # phone -> conversations where it is verified (insertion order = verification order)
        self._verified: dict[str, dict[str, int]] = {}
        # (channel, phone) -> open thread; (conversation, leg) -> (channel, phone)
        self._threads: dict[tuple[str, str], Thread] = {}
        self._legs: dict[tuple[str, str], tuple[str, str]] = {}
        self._sent: dict[tuple[str, str], Thread] = {}
        self._leg_provider: dict[tuple[str, str], str] = {}

    # -- queries (each catches up first) ------------------------------------------------

    def thread(self, channel: str, number: str) -> Thread | None:
        """The open thread of `number` on `channel`, if its conversation is still open."""
        with self._lock:
            self._catch_up()
            found = self._threads.get((channel, number))
            if found is None or not self._is_open(found.conversation_id):
                return None
            return found

    def verified_conversation(self, number: str) -> str | None:
        """The open conversation most recently active where `number` is verified."""
        with self._lock:
            self._catch_up()
            candidates = [c for c in self._verified.get(number, {}) if self._is_open(c)]
            if not candidates:
                return None
            return max(candidates, key=lambda c: self._conversations[c].last_sequence)

    def verified_phone(self, conversation_id: str) -> str | None:
        with self._lock:
            self._catch_up()
            state = self._conversations.get(conversation_id)
            return state.verified_phone if state else None

    def level(self, conversation_id: str) -> int:
        """The highest verification level reached in the conversation (0 = none)."""
        with self._lock:
            self._catch_up()
            state = self._conversations.get(conversation_id)
            return state.level if state else 0

    def is_open(self, conversation_id: str) -> bool:
        with self._lock:
            self._catch_up()
            return self._is_open(conversation_id)

    def sent_message(self, provider: str, provider_message_id: str) -> Thread | None:
        with self._lock:
            self._catch_up()
            return self._sent.get((provider, provider_message_id))

    def open_threads(self, conversation_id: str) -> list[OpenThread]:
        """The conversation's open SMS/WhatsApp legs, oldest first (empty once resolved)."""
        with self._lock:
            self._catch_up()
            if not self._is_open(conversation_id):
                return []
            return [
                OpenThread(leg, channel, number, self._leg_provider.get((cid, leg)))
                for (cid, leg), (channel, number) in self._legs.items()
                if cid == conversation_id
            ]

    # -- folding ------------------------------------------------------------------------

    def _is_open(self, conversation_id: str) -> bool:
        state = self._conversations.get(conversation_id)
        return state is not None and state.open

    def _catch_up(self) -> None:
        while True:
            batch = self._log.read_all(after=self._position, limit=PAGE)
            if not batch:
                return
            self._apply(batch)
            self._position = batch[-1].sequence

    def _apply(self, events: Sequence[RecordedEvent]) -> None:
        for event in events:
            cid = event.conversation_id
            state = self._conversations.setdefault(cid, _Conversation())
            state.last_sequence = event.sequence
            data = event.data
            if event.type == "ConversationResolved":
                state.open = False
            elif event.type == "SubjectErased":
                self._forget_numbers(cid, state)
            elif isinstance(data, IdentityVerified):
                state.level = max(state.level, data.level)
                number = phone.parse_subject(data.subject)
                if number is not None:
                    state.verified_phone = number
                    self._verified.setdefault(number, {})[cid] = event.sequence
            elif isinstance(data, LegOpened) and event.leg_id:
                self._open_leg(cid, event.leg_id, data)
            elif isinstance(data, LegClosed) and event.leg_id:
                key = self._legs.pop((cid, event.leg_id), None)
                if key is not None and self._threads.get(key) == Thread(cid, event.leg_id):
                    del self._threads[key]
            elif isinstance(data, MessageDeliveryUpdated):
                self._sent[(data.provider, data.provider_message_id)] = Thread(
                    cid, event.leg_id or ""
                )
                if event.leg_id:
                    self._leg_provider[(cid, event.leg_id)] = data.provider

    def _forget_numbers(self, cid: str, state: _Conversation) -> None:
        state.verified_phone = None
        for number in [n for n, conversations in self._verified.items() if cid in conversations]:
            del self._verified[number][cid]
            if not self._verified[number]:
                del self._verified[number]
        for leg_key in [k for k in self._legs if k[0] == cid]:
            key = self._legs.pop(leg_key)
            if self._threads.get(key) == Thread(*leg_key):
                del self._threads[key]

    def _open_leg(self, cid: str, leg: str, data: LegOpened) -> None:
        if data.channel not in THREAD_CHANNELS or not data.transport_ref:
            return
        number = phone.parse_subject(data.transport_ref.partition(":")[2])
        if number is None:
            return
        key = (data.channel, number)
        self._threads[key] = Thread(cid, leg)
        self._legs[(cid, leg)] = key
