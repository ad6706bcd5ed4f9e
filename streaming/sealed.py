"""The stream carries events in their stored form: personal fields stay encrypted.

The relay reads the global log *without* the ledger's codec (`SealedLog`), so a record's
`data` is what the ledger stores — personal fields sealed under the conversation's data key
(`{"_pii": {"k": key id, "f": fields, "c": ciphertext}}`, see `threadline.ledger.shredding`).
The broker's disks and every consumer without keyring access never see personal text, and
destroying a conversation's key erases it from the topic as well as from the ledger.

A consumer opens records with a `StreamDecoder`: given a codec with keyring access (the
same `ShreddingCodec` the ledger uses) it decrypts; without one, personal fields read as
their erasure markers (metrics and routing need none of them). A `SubjectErased` record
makes the decoder drop the keys it has seen for that conversation, so the same process reads
`[erased]` at once instead of after its key cache's TTL.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from eventsourcing.persistence import PersistenceError
from pydantic_core import from_json

from threadline.ledger import privacy
from threadline.ledger.codec import DataCodec
from threadline.ledger.envelope import RecordedEvent
from threadline.ledger.errors import IntegrityViolationError, StoreUnavailableError
from threadline.ledger.events import OpaqueData
from threadline.ledger.shredding import SEALED, ShreddingCodec
from threadline.ledger.store import MAX_READ, Ledger
from threadline.streaming import envelope
from threadline.streaming.errors import BadMessageError


class SealedLog:
    """The ledger's global log as stored: every payload is `OpaqueData` holding the stored
    (encrypted) data, under the event's real type and schema version."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def read_all(self, after: int = 0, limit: int = 500) -> list[RecordedEvent]:
        if after < 0 or not 1 <= limit <= MAX_READ:
            raise ValueError("after must be ≥ 0 and limit within 1..MAX_READ")
        try:
            rows = self.ledger.recorder.select_notifications(after, limit, inclusive_of_start=False)
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc
        return [_stored(str(r.originator_id), r.originator_version, r.id, r.state) for r in rows]

    def max_sequence(self) -> int:
        return self.ledger.max_sequence()

    @property
    def partitions(self) -> int:
        """THREADLINE_LOG_PARTITIONS of the ledger's database (1: unpartitioned)."""
        return int(getattr(self.ledger.recorder, "partitions", 1))

    def read_partition(
        self, partition: int, after: int = 0, limit: int = 500
    ) -> list[tuple[int, RecordedEvent]]:
        """Partition `partition`'s events after its sequence `after`, in commit order, as
        `(seq, event)`: each partition's sequence is gap-free and committed in order
        (ledger/partitions.py), so a reader that pages by `seq > last` misses nothing and
        needs no gap tracking. `event.sequence` stays the global id."""
        if after < 0 or not 1 <= limit <= MAX_READ:
            raise ValueError("after must be ≥ 0 and limit within 1..MAX_READ")
        if not 0 <= partition < self.partitions:
            raise ValueError(f"partition {partition} is not in 0..{self.partitions - 1}")
        select = getattr(self.ledger.recorder, "select_partition", None)
        if select is None:
            raise ValueError("the ledger's log is not partitioned")
        try:
            rows = select(partition, after, limit)
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc
        return [
            (seq, _stored(str(r.originator_id), r.originator_version, r.id, r.state))
            for seq, r in rows
        ]

    def partition_heads(self) -> dict[int, int]:
        """Each partition's last issued sequence (the lag a per-partition reader has)."""
        heads = getattr(self.ledger.recorder, "partition_heads", None)
        if heads is None:
            return {0: self.max_sequence()}
        try:
            return dict(heads())
        except PersistenceError as exc:
            raise StoreUnavailableError(f"read failed: {exc}") from exc

    def close(self) -> None:
        self.ledger.close()


def _stored(cid: str, position: int, sequence: int, state: bytes) -> RecordedEvent:
    """A stored row as an event whose payload is `OpaqueData` of the stored data (a known
    model would reject the sealed field); upcasting is left to the consumer."""
    try:
        env = from_json(state, allow_inf_nan=False)
        data = env["data"]
        if not isinstance(data, dict):
            raise TypeError("stored data is not a JSON object")
        return RecordedEvent(
            UUID(env["event_id"]),
            env["conversation_id"],
            env["position"],
            sequence,
            env["type"],
            OpaqueData.model_validate(data),
            datetime.fromisoformat(env["occurred_at"]),
            datetime.fromisoformat(env["recorded_at"]),
            env["leg_id"],
            env["actor"],
            env["schema_version"],
            env["prev_hash"],
            env["hash"],
        )
    except Exception as exc:  # whatever the parser raised: the ledger's error for it
        raise IntegrityViolationError(
            cid, position, f"unreadable record: {type(exc).__name__}: {exc}"
        ) from None


class _Redacting:
    """No keyring: personal fields read as their erasure markers."""

    def encode(self, conversation_id: str, event_type: str, data: dict[str, object]) -> object:
        raise TypeError("a redacting codec cannot encode")

    def decode(self, conversation_id: str, event_type: str, stored: object) -> dict[str, object]:
        if not isinstance(stored, dict):
            raise ValueError("stored data is not a JSON object")
        sealed = stored.get(SEALED)
        if sealed is None:
            return stored
        fields = sealed.get("f") if isinstance(sealed, dict) else None
        if not isinstance(fields, list):
            raise ValueError("malformed encrypted personal data")
        policy = privacy.policy_for(event_type)
        data = {k: v for k, v in stored.items() if k != SEALED}
        for name in fields:
            data[str(name)] = policy.marker(str(name)) if policy else privacy.ERASED
        return data


class StreamDecoder:
    """Record value → RecordedEvent with its personal fields decrypted (given a codec with
    keyring access) or redacted (without one)."""

    def __init__(self, codec: DataCodec | None = None) -> None:
        self.codec: DataCodec = codec if codec is not None else _Redacting()
        self._keys: dict[str, set[str]] = {}  # conversation id -> key ids seen

    def __call__(self, value: bytes | None) -> RecordedEvent:
        return self.decode(value)

    def decode(self, value: bytes | None) -> RecordedEvent:
        event = envelope.decode(value, codec=self.codec, on_sealed=self._seen)
        if event.type == "SubjectErased":
            self._forget(event.conversation_id)
        return event

    def _seen(self, conversation_id: str, stored: dict[str, object]) -> None:
        sealed = stored.get(SEALED)
        if isinstance(sealed, dict) and isinstance(sealed.get("k"), str):
            self._keys.setdefault(conversation_id, set()).add(str(sealed["k"]))

    def _forget(self, conversation_id: str) -> None:
        keys = self._keys.pop(conversation_id, set())
        if isinstance(self.codec, ShreddingCodec):
            for key_id in keys:
                self.codec.forget(conversation_id, key_id)


__all__ = ["BadMessageError", "SealedLog", "StreamDecoder"]
