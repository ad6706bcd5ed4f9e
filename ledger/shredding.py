"""Crypto-shredding codec: personal fields are stored encrypted with their conversation's
data key, so destroying that key erases them while every hash of the chain still verifies
(the chain covers the stored, encrypted form).

Stored form of a payload with personal fields (see `threadline.ledger.privacy` for which they are)::

    {"role": "visitor", "_pii": {"k": KEY_ID, "f": ["text"], "c": BASE64}}

`c` is AES-256-GCM of the canonical JSON of the personal fields, bound (associated data) to
the conversation, the event type, the key id and the field names, so a blob cannot be moved
to another conversation, event type or field set. A payload without personal data (or with
only null ones) is stored as is. Decoding with a destroyed key puts each field's marker
(`[erased]`) in place of its value; an unknown key id or a blob that does not authenticate is
an error (the store reports it as an unreadable record).

Keying: one data key per conversation — the conversation is about one data subject, and
what the agent says back is that subject's data too. Identifier fields (visitor reference,
identity subjects, transport references) link the conversation to blinded subject terms;
`threadline.ledger.erasure` destroys the keys of every conversation linked to a subject.

Keys are cached per process for `key_cache_ttl_s`. An erasure made through this codec takes
effect at once; one made by another process is seen here within `MARK_INTERVAL_S`: the key
table's erasure mark (its latest destruction time, one indexed read) is compared at most that
often while keys are used, and a change drops every cached key (issue 17, class 9).
"""

from __future__ import annotations

import binascii
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pydantic_core import from_json, to_json

from threadline.ledger import aead, privacy
from threadline.ledger.codec import WouldBlockError
from threadline.ledger.keyring import DataKeyRecord, KeyTable
from threadline.ledger.masterkey import MasterKey

SEALED = "_pii"  # a payload field can never be named so (pydantic forbids leading "_")
CACHE_SIZE = 100_000
MARK_INTERVAL_S = 0.25  # how stale another process's erasure may be here (goal: < 1 s)
NO_KEY_MESSAGE = (
    "this record holds encrypted personal data and no master key is configured "
    "(set THREADLINE_MASTER_KEY or THREADLINE_MASTER_KEY_FILE)"
)


class _Cache:
    """A bounded map of expiring entries (times from `time.monotonic`). Reads take no lock
    (a dict lookup is atomic in CPython, and this is the replay hot path); writes do, and
    evict the oldest entries beyond `size`."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: dict[str, tuple[Any, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, now: float) -> Any:
        item = self._items.get(key)
        if item is None or item[1] < now:
            return None
        return item[0]

    def put(self, key: str, value: Any, expires: float) -> None:
        with self._lock:
            self._items.pop(key, None)  # re-inserted last: evicted last
            self._items[key] = (value, expires)
            while len(self._items) > self._size:
                del self._items[next(iter(self._items))]

    def pop(self, key: str) -> None:
        with self._lock:
            self._items.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class _Destroyed:
    """Cache value for a destroyed key (a destroyed key never comes back)."""


DESTROYED = _Destroyed()


class ShreddingCodec:
    """`encrypt=False` stores new payloads in clear but still reads encrypted ones (privacy
    "off" on a database that has them). `keys=None` means no master key: encrypted records
    cannot be read."""

    def __init__(
        self,
        table: KeyTable | None,
        master: MasterKey | None,
        *,
        encrypt: bool = True,
        index_key: bytes | None = None,
        previous: MasterKey | None = None,
        ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`index_key` blinds identifiers (default: the master key's legacy derived one);
        `previous` is the master key being rotated away from: keys still wrapped by it are
        read, new keys are wrapped by `master`."""
        if encrypt and (table is None or master is None):
            raise ValueError("encryption needs a key table and a master key")
        self.table = table
        self.master = master
        self.previous = previous
        self._masters = {m.master_id: m for m in (previous, master) if m is not None}
        self._index_key = index_key or (master.legacy_index_key() if master else None)
        self.encrypt = encrypt
        self._ttl = ttl_s
        self._clock = clock
        self._writers = _Cache(CACHE_SIZE)  # conversation id -> (key id, Sealer)
        self._readers = _Cache(CACHE_SIZE)  # key id -> Sealer | DESTROYED
        self._linked = _Cache(CACHE_SIZE)  # blind + conversation id -> True
        self._mark: str | None = None  # the key table's erasure mark when last compared
        self._mark_due = float("-inf")

    def __repr__(self) -> str:
        return f"ShreddingCodec(encrypt={self.encrypt}, master={self.master!r})"

    # -- DataCodec -----------------------------------------------------------------------

    def encode(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        if not self.encrypt:
            return data
        policy = privacy.policy_for(event_type)
        if policy is None or not policy.personal:
            return data
        secret = {k: data[k] for k in policy.ordered if data.get(k) is not None}
        if not secret:
            return data
        links = self._new_links(conversation_id, policy.identifiers, secret)
        key_id, sealer = self._writer(conversation_id, links)
        return _sealed_form(conversation_id, event_type, data, secret, key_id, sealer)

    def encode_without_io(self, conversation_id: str, event_type: str, data: dict[str, Any]) -> Any:
        """`encode`, for a caller that must not block (an append on the event loop), or
        WouldBlockError if it would read or write the key table: the erasure mark is due for a
        look, the conversation's key is not cached, or an identifier is not yet linked.
        Also WouldBlockError whenever `creates_key(conversation_id)` would be true, whatever the
        event type, so that a caller may take "no WouldBlockError" to mean "no key created"."""
        if not self.encrypt:
            return data
        now = self._clock()
        if now >= self._mark_due and self.table is not None:
            raise WouldBlockError
        cached = self._writers.get(conversation_id, now)
        if cached is None:
            raise WouldBlockError
        policy = privacy.policy_for(event_type)
        if policy is None or not policy.personal:
            return data
        secret = {k: data[k] for k in policy.ordered if data.get(k) is not None}
        if not secret:
            return data
        if self._new_links(conversation_id, policy.identifiers, secret):
            raise WouldBlockError
        key_id, sealer = cached
        return _sealed_form(conversation_id, event_type, data, secret, key_id, sealer)

    def decode(self, conversation_id: str, event_type: str, stored: Any) -> dict[str, Any]:
        if not isinstance(stored, dict):
            raise ValueError("stored data is not a JSON object")
        sealed = stored.get(SEALED)
        if sealed is None:
            return stored
        key_id, fields, blob = _parse_sealed(sealed)
        data = {k: v for k, v in stored.items() if k != SEALED}
        sealer = self._reader(conversation_id, key_id)
        if sealer is DESTROYED:
            policy = privacy.policy_for(event_type)
            for name in fields:
                data[name] = policy.marker(name) if policy else privacy.ERASED
            return data
        plain = from_json(sealer.open(blob, _aad(conversation_id, event_type, key_id, fields)))
        if plain.__class__ is not dict or len(plain) != len(fields):
            raise ValueError("decrypted personal fields do not match their field list")
        for name in fields:
            if name not in plain:
                raise ValueError("decrypted personal fields do not match their field list")
        data.update(plain)
        return data

    # -- subjects and erasure ------------------------------------------------------------

    def blinds(self, subject: str) -> list[str]:
        """The index terms that `subject` matches, blinded."""
        return sorted(self._blind(t) for t in privacy.identifier_terms(subject))

    def subject_ref(self, subject: str) -> str:
        """A pseudonymous reference to `subject` for SubjectErased events and reports:
        stable for the database (master key rotations keep it), not reversible without
        its index key."""
        return "hmac:" + self._blind(subject)[:40]

    @property
    def index_key(self) -> bytes:
        self._require_master()
        assert self._index_key is not None
        return self._index_key

    def _blind(self, term: str) -> str:
        return aead.blind(self.index_key, term)

    def creates_key(self, conversation_id: str) -> bool:
        """Would encoding personal data for this conversation now create a data key? The
        ledger then looks for a repeated event id first, so that re-sending an erased event
        answers "duplicate" without a new key (issue 17, class 9)."""
        if not self.encrypt:
            return False
        now = self._clock()
        self._check_erasures(now)
        return self._writers.get(conversation_id, now) is None

    def claim_refresh(self) -> Callable[[], None] | None:
        """Without blocking: if the erasure mark is due for a look, claims that look (as
        the encode that finds it due does) and returns it, to be run in a worker thread;
        None if it is not due. Meanwhile encodes go on with the cached keys, as they do in
        other threads while one thread's encode is looking."""
        if not self.encrypt or self.table is None:
            return None
        now = self._clock()
        if now < self._mark_due:
            return None
        self._mark_due = now + MARK_INTERVAL_S
        return self._compare_mark

    def _check_erasures(self, now: float) -> None:
        """Drops every cached key when another process destroyed one since the last look."""
        if now < self._mark_due or self.table is None:
            return
        self._mark_due = now + MARK_INTERVAL_S
        self._compare_mark()

    def _compare_mark(self) -> None:
        assert self.table is not None
        mark = self.table.erasure_mark()
        if self._mark is not None and mark != self._mark:
            self._writers.clear()
            self._readers.clear()
        self._mark = mark

    def forget(self, conversation_id: str, key_id: str) -> None:
        """Drops a destroyed key from this process's caches."""
        self._writers.pop(conversation_id)
        self._readers.put(key_id, DESTROYED, float("inf"))

    # -- keys ----------------------------------------------------------------------------

    def _require_master(self) -> MasterKey:
        if self.master is None or self.table is None:
            raise ValueError(NO_KEY_MESSAGE)
        return self.master

    def _new_links(
        self, conversation_id: str, names: frozenset[str], secret: dict[str, Any]
    ) -> list[str]:
        """Blinded index terms of the identifiers in `secret` not yet linked (as far as
        this process knows) to the conversation."""
        if not names:
            return []
        terms: set[str] = set()
        for name in names:
            value = secret.get(name)
            if isinstance(value, str):
                terms |= privacy.identifier_terms(value)
        now = self._clock()
        return sorted(
            b
            for b in (self._blind(t) for t in terms)
            if self._linked.get(f"{b}/{conversation_id}", now) is None
        )

    def _writer(self, conversation_id: str, links: list[str]) -> tuple[str, aead.Sealer]:
        """The conversation's active key, created on first use; `links` are written in
        the same transaction as a new key (one round trip for a new conversation)."""
        assert self.table is not None
        assert self.master is not None
        now = self._clock()
        self._check_erasures(now)
        cached = self._writers.get(conversation_id, now)
        if cached is not None:
            if links:
                self.table.link(conversation_id, links)
            key_id, sealer = cached
        else:
            key_id = uuid4().hex
            data_key = aead.new_key()
            record = self.table.ensure_key(
                DataKeyRecord(
                    key_id=key_id,
                    conversation_id=conversation_id,
                    master_id=self.master.master_id,
                    wrapped=self.master.wrap(data_key, key_id, conversation_id),
                    created_at=datetime.now(UTC),
                ),
                links,
            )
            key_id = record.key_id
            sealer = self._unwrap(record, conversation_id)
            self._writers.put(conversation_id, (key_id, sealer), now + self._ttl)
            self._readers.put(key_id, sealer, now + self._ttl)
        for b in links:
            self._linked.put(f"{b}/{conversation_id}", True, float("inf"))
        return key_id, sealer

    def _reader(self, conversation_id: str, key_id: str) -> Any:
        now = self._clock()
        self._check_erasures(now)
        cached = self._readers.get(key_id, now)
        if cached is not None:
            return cached
        if self.table is None or self.master is None:
            raise ValueError(NO_KEY_MESSAGE)
        record = self.table.get_key(key_id)
        if record is None:
            raise ValueError(f"data key {key_id} is not in the key table")
        if record.conversation_id != conversation_id:
            raise ValueError(f"data key {key_id} belongs to another conversation")
        if record.wrapped is None:
            self._readers.put(key_id, DESTROYED, float("inf"))
            return DESTROYED
        sealer = self._unwrap(record, conversation_id)
        self._readers.put(key_id, sealer, now + self._ttl)
        return sealer

    def _unwrap(self, record: DataKeyRecord, conversation_id: str) -> aead.Sealer:
        assert record.wrapped is not None
        master = self._masters.get(record.master_id)
        if master is None:
            configured = ", ".join(self._masters) or "none"
            raise ValueError(
                f"data key {record.key_id} is wrapped by master key {record.master_id}, "
                f"not by a configured one ({configured})"
            )
        return aead.Sealer(master.unwrap(record.wrapped, record.key_id, conversation_id))


def _sealed_form(
    conversation_id: str,
    event_type: str,
    data: dict[str, Any],
    secret: dict[str, Any],
    key_id: str,
    sealer: aead.Sealer,
) -> dict[str, Any]:
    fields = list(secret)  # sorted: `policy.ordered` is
    blob = sealer.seal(to_json(secret), _aad(conversation_id, event_type, key_id, fields))
    stored = {k: v for k, v in data.items() if k not in secret}
    stored[SEALED] = {
        "k": key_id,
        "f": fields,
        "c": binascii.b2a_base64(blob, newline=False).decode("ascii"),
    }
    return stored


def _aad(conversation_id: str, event_type: str, key_id: str, fields: list[str]) -> bytes:
    # Unit separators cannot occur in any part: conversation ids, type and field names are
    # restricted identifiers and key ids are hex.
    return "\x1f".join(["pii", conversation_id, event_type, key_id, *fields]).encode()


def _parse_sealed(sealed: Any) -> tuple[str, list[str], bytes]:
    try:
        key_id, fields, text = sealed["k"], sealed["f"], sealed["c"]
        if len(sealed) != 3 or key_id.__class__ is not str or fields.__class__ is not list:
            raise TypeError
        for name in fields:  # the associated data separates parts with \x1f
            if name.__class__ is not str or "\x1f" in name:
                raise TypeError
        if "\x1f" in key_id:
            raise TypeError
        return key_id, fields, binascii.a2b_base64(text, strict_mode=True)
    except (KeyError, TypeError, ValueError):  # binascii.Error is a ValueError
        raise ValueError("malformed encrypted personal data") from None
