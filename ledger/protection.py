"""Chooses the data codec of a store from settings: crypto-shredding on or off, and which
master key (see `threadline.ledger.masterkey` for where keys come from, docs/privacy.md for why)."""

from __future__ import annotations

import logging
from pathlib import Path

from threadline.ledger import aead
from threadline.ledger.backends import Backend, Kind, sqlite_path
from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.keyring import open_key_table
from threadline.ledger.masterkey import MasterKey, create_key_file, ephemeral, read_key_file
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.shredding import ShreddingCodec

log = logging.getLogger(__name__)
_warned = False


def default_key_file(url: str) -> Path | None:
    """`<database>.key` for an SQLite file store, else None."""
    if Backend.parse(url).kind is not Kind.SQLITE:
        return None
    name = sqlite_path(url)
    if name.startswith("file:"):  # in-memory
        return None
    return Path(name + ".key")


def configured_master(url: str, settings: LedgerSettings) -> MasterKey | None:
    """The master key the settings name, without creating anything."""
    if settings.master_key is not None:
        return MasterKey(settings.master_key.get_secret_value().encode(), "THREADLINE_MASTER_KEY")
    path = settings.master_key_file or default_key_file(url)
    if path is not None and path.exists():
        return read_key_file(path)
    return None


def _new_master(url: str, settings: LedgerSettings) -> MasterKey | None:
    path = settings.master_key_file or default_key_file(url)
    if path is not None:
        return create_key_file(path)
    if Backend.parse(url).in_memory:
        return ephemeral()
    return None


def open_codec(url: str, recorder: object, settings: LedgerSettings) -> ShreddingCodec:
    mode = settings.privacy
    master = configured_master(url, settings)
    if master is None and mode == "off":
        return ShreddingCodec(None, None, encrypt=False)
    table = open_key_table(recorder, Backend.parse(url).kind)
    if master is None:
        state = table.keyring_state()
        if state is not None:
            raise StoreUnavailableError(
                f"this database's personal data is encrypted with master key {state.master_id} "
                "and no master key is configured: set THREADLINE_MASTER_KEY or "
                "THREADLINE_MASTER_KEY_FILE"
            )
        master = _new_master(url, settings)
    if master is None:
        if mode == "on":
            raise StoreUnavailableError(
                "THREADLINE_PRIVACY=on needs a master key: set THREADLINE_MASTER_KEY "
                "or THREADLINE_MASTER_KEY_FILE"
            )
        _warn_clear()
        return ShreddingCodec(None, None, encrypt=False)
    previous = None
    if settings.master_key_previous is not None:
        material = settings.master_key_previous.get_secret_value().encode()
        previous = MasterKey(material, "THREADLINE_MASTER_KEY_PREVIOUS")
    state = table.keyring_state() or table.claim_master(
        master.master_id, master.wrap_index(aead.new_key())
    )
    # The database's master key is the configured one, or the previous one while a rotation
    # (threadline.ledger.rotation) has not finished.
    owner = {m.master_id: m for m in (previous, master) if m is not None}.get(state.master_id)
    if owner is None:
        raise StoreUnavailableError(
            f"the master key from {master.origin} (id {master.master_id}) is not the one "
            f"this database's personal data is encrypted with (id {state.master_id})"
        )
    if state.index_key is None:  # a database made before the index key was stored
        index_key = owner.legacy_index_key()
        table.store_index(owner.master_id, owner.wrap_index(index_key))
    else:
        try:
            index_key = owner.unwrap_index(state.index_key)
        except aead.DecryptionFailedError:
            raise StoreUnavailableError(
                f"the subject-index key does not unwrap with master key {owner.master_id}"
            ) from None
    return ShreddingCodec(
        table,
        master,
        encrypt=mode != "off",
        index_key=index_key,
        previous=previous,
        ttl_s=settings.key_cache_ttl_s,
    )


def _warn_clear() -> None:
    global _warned
    if not _warned:
        _warned = True
        log.warning(
            "no master key configured: personal data is stored in clear and cannot be "
            "erased; set THREADLINE_MASTER_KEY (see docs/privacy.md)"
        )
