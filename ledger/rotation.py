"""Master key rotation: re-wrap every live data key and the subject-index key under a new
master key, so that copies of wrapped keys left behind (PostgreSQL row versions, WAL
archives, backups) become useless once the old master key is destroyed.

Procedure (docs/privacy.md): configure every process with the new key in
`THREADLINE_MASTER_KEY` and the old one in `THREADLINE_MASTER_KEY_PREVIOUS` (they then wrap
new keys with the new one and read both), run `threadline privacy rotate`, then remove the
old key everywhere. The rotation pages through the keys in key-id order and re-wraps each
one in a conditional update (still active, still wrapped by the old key), so it runs online,
may be interrupted and resumed, and never resurrects a key destroyed meanwhile. The
database's recorded master key changes last, after a pass that found nothing left to do.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from threadline.ledger.errors import KeyRotationUnavailableError
from threadline.ledger.shredding import ShreddingCodec
from threadline.ledger.store import Ledger

log = logging.getLogger(__name__)

PAGE = 500
MAX_PASSES = 5


@dataclass(frozen=True, slots=True)
class RotationReport:
    old_master_id: str
    new_master_id: str
    rewrapped: int
    completed: bool  # the database now records the new master key

    def to_json(self) -> dict[str, object]:
        return {
            "old_master_id": self.old_master_id,
            "new_master_id": self.new_master_id,
            "rewrapped": self.rewrapped,
            "completed": self.completed,
        }


def rotate_master_key(ledger: Ledger, page: int = PAGE) -> RotationReport:
    codec = ledger.codec
    if not isinstance(codec, ShreddingCodec) or codec.table is None or codec.master is None:
        raise KeyRotationUnavailableError("this store has no master key to rotate")
    table, new = codec.table, codec.master
    state = table.keyring_state()
    assert state is not None  # a codec with a master key has claimed the keyring
    if state.master_id == new.master_id:
        if codec.previous is not None:
            log.info("master key %s is already the database's", new.master_id)
        return RotationReport(new.master_id, new.master_id, 0, True)
    old = codec.previous
    if old is None or old.master_id != state.master_id:
        raise KeyRotationUnavailableError(
            f"set THREADLINE_MASTER_KEY_PREVIOUS to the database's current master key "
            f"(id {state.master_id}) and THREADLINE_MASTER_KEY to the new one"
        )
    rewrapped = 0
    for _ in range(MAX_PASSES):
        found = 0
        after = ""
        while True:
            records = table.active_keys_after(after, page)
            if not records:
                break
            updates = []
            for r in records:
                if r.master_id == old.master_id and r.wrapped is not None:
                    data_key = old.unwrap(r.wrapped, r.key_id, r.conversation_id)
                    wrapped = new.wrap(data_key, r.key_id, r.conversation_id)
                    updates.append((r.key_id, old.master_id, new.master_id, wrapped))
            found += len(updates)
            rewrapped += table.rewrap(updates)
            after = records[-1].key_id
        if found == 0:  # a whole pass with nothing wrapped by the old key
            completed = table.set_master(
                old.master_id, new.master_id, new.wrap_index(codec.index_key)
            )
            log.info("master key rotated to %s: %d data keys re-wrapped", new.master_id, rewrapped)
            return RotationReport(old.master_id, new.master_id, rewrapped, completed)
    # Keys keep appearing under the old key: some process still runs without the new one.
    return RotationReport(old.master_id, new.master_id, rewrapped, False)
