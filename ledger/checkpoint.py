"""Signed checkpoints of every conversation's head and of the global log position.

A hash chain shows an edit in the middle of a conversation, but someone with full write
access to the database can cut or rewrite a conversation's newest events (and their
idempotency rows) consistently. A checkpoint records, outside the database, each
conversation's (position, head hash) and the global log's last sequence, signed with an
Ed25519 key that also lives outside the database; each checkpoint carries the hash of the
previous one, so the checkpoint log itself cannot be cut in the middle or reordered.
`verify_against` then names every conversation whose head went backwards (truncation), is
gone, or whose record at a checkpointed position has another hash (a rewrite).

Files (`THREADLINE_CHECKPOINT_KEY_FILE`, `THREADLINE_CHECKPOINT_FILE`; for an SQLite file
database both default to files beside it): the key file holds the 32-byte Ed25519 seed as
hex (mode 0600, created on the first checkpoint); the checkpoint file is JSON Lines, one
canonical JSON object per checkpoint, appended and fsync'd. See docs/integrity.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from threadline.ledger import audit, canonical
from threadline.ledger.backends import Backend, Kind, sqlite_path
from threadline.ledger.errors import LedgerError
from threadline.ledger.settings import LedgerSettings
from threadline.ledger.store import Ledger

FORMAT = 1


class CheckpointError(LedgerError):
    """The checkpoint key or log is missing, unreadable or does not verify."""


@dataclass(frozen=True, slots=True)
class CheckpointPaths:
    key_file: Path
    log_file: Path


def configured_paths(url: str, settings: LedgerSettings) -> CheckpointPaths:
    """Where the key and the log are: the settings, else beside an SQLite file database."""
    base: str | None = None
    if Backend.parse(url).kind is Kind.SQLITE:
        name = sqlite_path(url)
        if not name.startswith("file:") and name != ":memory:":
            base = name
    key = settings.checkpoint_key_file or (Path(base + ".checkpoint-key") if base else None)
    log = settings.checkpoint_file or (Path(base + ".checkpoints.jsonl") if base else None)
    if key is None or log is None:
        raise CheckpointError(
            "set THREADLINE_CHECKPOINT_KEY_FILE and THREADLINE_CHECKPOINT_FILE (outside the "
            "database) to write or verify checkpoints"
        )
    return CheckpointPaths(key, log)


class CheckpointKey:
    __slots__ = ("_private", "key_id", "public")

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id_of(self.public)

    def sign(self, message: bytes) -> str:
        return self._private.sign(message).hex()

    def __repr__(self) -> str:  # never the seed
        return f"CheckpointKey(key_id={self.key_id!r})"


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def read_key(path: Path) -> CheckpointKey:
    try:
        seed = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except OSError as exc:
        raise CheckpointError(
            f"cannot read the checkpoint key file {path}: {exc.strerror}"
        ) from None
    except (UnicodeDecodeError, ValueError):
        raise CheckpointError(f"the checkpoint key file {path} is not a hex seed") from None
    if len(seed) != 32:
        raise CheckpointError(f"the checkpoint key file {path} must hold 32 bytes of hex")
    return CheckpointKey(Ed25519PrivateKey.from_private_bytes(seed))


def create_key(path: Path) -> CheckpointKey:
    """A new key at `path` unless one exists (then that one): never replaces a key."""
    if path.exists():
        return read_key(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, (secrets.token_bytes(32).hex() + "\n").encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)
    except OSError as exc:
        raise CheckpointError(
            f"cannot create the checkpoint key file {path}: {exc.strerror}"
        ) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
    return read_key(path)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    number: int
    created_at: str
    global_sequence: int
    heads: dict[str, tuple[int, str]]
    prev: str
    key_id: str
    signature: str

    def body(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "number": self.number,
            "created_at": self.created_at,
            "global_sequence": self.global_sequence,
            "heads": {c: [p, h] for c, (p, h) in sorted(self.heads.items())},
            "prev": self.prev,
            "key_id": self.key_id,
        }

    def line(self) -> bytes:
        return canonical.dumps({**self.body(), "signature": self.signature})

    def digest(self) -> str:
        return canonical.sha256_hex(self.line())


def _parse(number: int, raw: bytes) -> Checkpoint:
    try:
        obj = canonical.loads(raw)
        heads = {str(c): (int(v[0]), str(v[1])) for c, v in obj["heads"].items()}
        return Checkpoint(
            number=int(obj["number"]),
            created_at=str(obj["created_at"]),
            global_sequence=int(obj["global_sequence"]),
            heads=heads,
            prev=str(obj["prev"]),
            key_id=str(obj["key_id"]),
            signature=str(obj["signature"]),
        )
    except (ValueError, KeyError, TypeError, IndexError, AttributeError):
        raise CheckpointError(f"checkpoint line {number} is not a checkpoint") from None


def read_log(path: Path) -> list[Checkpoint]:
    if not path.exists():
        return []
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint file {path}: {exc.strerror}") from None
    return [_parse(n, line) for n, line in enumerate(lines, start=1) if line.strip()]


def read_last(path: Path) -> Checkpoint | None:
    """The newest checkpoint, read from the end of the log: a writer needs only it, and the
    log grows by one line (one head per conversation) every interval."""
    try:
        with path.open("rb") as log:
            position = log.seek(0, os.SEEK_END)
            tail = b""
            while position > 0 and b"\n" not in tail.rstrip():
                step = min(1 << 16, position)
                position -= step
                log.seek(position)
                tail = log.read(step) + tail
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CheckpointError(f"cannot read the checkpoint file {path}: {exc.strerror}") from None
    line = tail.rstrip().rsplit(b"\n", 1)[-1]
    if not line.strip():
        return None
    try:
        return _parse(0, line)
    except CheckpointError:
        raise CheckpointError("the last line of the checkpoint log is not a checkpoint") from None


def verify_log(checkpoints: list[Checkpoint], public: Ed25519PublicKey) -> list[str]:
    """Problems of the checkpoint log itself: signature, numbering, chaining."""
    problems: list[str] = []
    prev = canonical.GENESIS_HASH
    for expected, cp in enumerate(checkpoints, start=1):
        where = f"checkpoint {cp.number}"
        if cp.number != expected:
            problems.append(f"{where}: numbered out of order (expected {expected})")
        if cp.prev != prev:
            problems.append(f"{where}: does not chain to the previous checkpoint")
        problems.extend(_signature_problems(cp, public))
        prev = cp.digest()
    return problems


def write_checkpoint(
    ledger: Ledger, paths: CheckpointPaths, *, full: bool = False
) -> tuple[Checkpoint, audit.AuditReport]:
    """Surveys the ledger and appends a signed checkpoint of what verifies. A broken
    conversation is not checkpointed at a new head (its last good head would hide the break);
    one checkpointed before keeps that head.

    Incremental (`full=False`, once a checkpoint exists): only the newest checkpoint is read
    (its signature checked), and only conversations with log entries after it are read, from
    their checkpointed head on; every other checkpointed head row is read back, checked to be
    the checkpointed record and carried forward (`audit.survey_since`). That is enough to
    refuse signing over a cut, deleted or rewritten head. A break below an untouched head, or
    a forged checkpoint before the newest, is not looked for here: `verify_against` checks
    the whole log and surveys every event, and a carried-forward head (verified when first
    signed) cannot hide a break. `full=True` is the writer as it was: the whole checkpoint log
    verified and the whole ledger surveyed."""
    key = create_key(paths.key_file)
    try:
        lock = paths.log_file.open("ab")
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the checkpoint file {paths.log_file}: {exc.strerror}"
        ) from None
    with lock:
        # Two runs at once would both number theirs N+1 and chain to the same parent.
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        signed, report = _append(ledger, paths, key, lock, full)
    return signed, report


def _append(
    ledger: Ledger, paths: CheckpointPaths, key: CheckpointKey, out: BinaryIO, full: bool
) -> tuple[Checkpoint, audit.AuditReport]:
    if full:
        existing = read_log(paths.log_file)
        problems = verify_log(existing, key.public)
        last = existing[-1] if existing else None
    else:
        # The newest checkpoint is all a writer builds on (numbering, chaining, the heads it
        # carries forward), so only its signature must hold; `verify_against` checks the
        # whole log (each signature, numbering, chaining).
        last = read_last(paths.log_file)
        problems = _signature_problems(last, key.public) if last is not None else []
    if problems:
        raise CheckpointError(f"the checkpoint log does not verify: {problems[0]}")
    if last is None or full or _partitioned(ledger):
        watch = {c: p for c, (p, _) in last.heads.items()} if last else None
        report = audit.survey_all(ledger, watch=watch)
    else:
        report = audit.survey_since(ledger, last.heads, last.global_sequence)
    if last is not None:
        # Signing over a cut or rewritten tail would hide it: the next verify compares with
        # the newest checkpoint only.
        drift = _drift(last, report)
        if drift:
            raise CheckpointError(
                f"the ledger no longer matches checkpoint {last.number}, not signing over it: "
                f"{drift[0]} ({len(drift)} problem(s); see `threadline audit verify --all`)"
            )
    broken = {b.conversation_id for b in report.broken}
    heads = {c: h for c, h in report.heads.items() if c not in broken}
    if last is not None:  # no drift: a broken conversation's checkpointed head still holds
        heads |= {c: last.heads[c] for c in broken if c in last.heads}
    unsigned = Checkpoint(
        number=last.number + 1 if last is not None else 1,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        global_sequence=report.last_sequence,
        heads=heads,
        prev=last.digest() if last is not None else canonical.GENESIS_HASH,
        key_id=key.key_id,
        signature="",
    )
    signed = sign(unsigned, key)
    try:
        out.write(signed.line() + b"\n")
        out.flush()
        os.fsync(out.fileno())
    except OSError as exc:
        raise CheckpointError(
            f"cannot write the checkpoint file {paths.log_file}: {exc.strerror}"
        ) from None
    return signed, report


def _signature_problems(cp: Checkpoint, public: Ed25519PublicKey) -> list[str]:
    try:
        public.verify(bytes.fromhex(cp.signature), canonical.dumps(cp.body()))
    except (InvalidSignature, ValueError):
        return [
            f"checkpoint {cp.number}: signature does not verify with the checkpoint key (forged)"
        ]
    return []


def _partitioned(ledger: Ledger) -> bool:
    """With THREADLINE_LOG_PARTITIONS > 1 global sequences are not issued in commit order
    across partitions: an event below the checkpoint's sequence may commit after it, and
    "entries after the checkpoint" would miss it. Incremental needs per-partition positions,
    which a format-1 checkpoint does not hold: those ledgers are surveyed whole."""
    return int(getattr(ledger.recorder, "partitions", 1)) > 1


def sign(unsigned: Checkpoint, key: CheckpointKey) -> Checkpoint:
    """`unsigned` with its signature over the canonical body (everything but the signature)."""
    fields = {name: getattr(unsigned, name) for name in Checkpoint.__slots__}
    fields["signature"] = key.sign(canonical.dumps(unsigned.body()))
    return Checkpoint(**fields)


@dataclass(frozen=True, slots=True)
class CheckpointReport:
    checkpoints: int
    problems: tuple[str, ...]


def verify_against(ledger: Ledger, paths: CheckpointPaths) -> CheckpointReport:
    """Verifies the checkpoint log, then compares the last checkpoint with the ledger: one
    problem line per conversation truncated, gone or rewritten since, and for the global log
    if it went backwards. No checkpoint yet: nothing to compare (0 checkpoints)."""
    if not paths.log_file.exists():
        return CheckpointReport(0, ())
    key = read_key(paths.key_file)
    checkpoints = read_log(paths.log_file)
    problems = verify_log(checkpoints, key.public)
    if not checkpoints:
        return CheckpointReport(0, tuple(problems))
    last = checkpoints[-1]
    report = audit.survey_all(ledger, watch={c: p for c, (p, _) in last.heads.items()})
    problems.extend(_drift(last, report))
    return CheckpointReport(len(checkpoints), tuple(problems))


def _drift(last: Checkpoint, report: audit.AuditReport) -> list[str]:
    """What changed since `last` other than growth (`report` surveyed with its heads)."""
    problems = compare(last, report.heads, report.hashes_at)
    if report.last_sequence < last.global_sequence:
        problems.append(
            f"global log: last sequence {report.last_sequence} is below checkpoint "
            f"{last.number}'s {last.global_sequence} (the newest events were deleted)"
        )
    return problems


def compare(
    checkpoint: Checkpoint,
    heads: Mapping[str, tuple[int, str]],
    hashes_at: Mapping[str, str],
) -> list[str]:
    problems: list[str] = []
    n = checkpoint.number
    for conversation_id, (position, digest) in sorted(checkpoint.heads.items()):
        current = heads.get(conversation_id)
        if current is None:
            problems.append(
                f"conversation {conversation_id}: missing; checkpoint {n} recorded it at "
                f"position {position} (deleted)"
            )
        elif current[0] < position:
            problems.append(
                f"conversation {conversation_id}: truncated: head at position {current[0]}, "
                f"checkpoint {n} recorded position {position}"
            )
        elif hashes_at.get(conversation_id) != digest:
            problems.append(
                f"conversation {conversation_id}: position {position}: rewritten: its hash "
                f"differs from checkpoint {n}"
            )
    return problems
