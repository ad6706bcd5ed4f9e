"""Identity and verification state of one conversation, across its legs.

The question this projection exists to answer is whether the visitor was asked to prove who
they are again after switching channels. Definition (issue 4): a *re-verification* is a
`VerificationFailed` or `IdentityVerified` on a leg whose conversation was already verified
at that level — for `IdentityVerified` at a level ≤ the level already reached, for
`VerificationFailed` (which carries no level) once any level was reached. A verification
whose method is in `INHERITING_METHODS` (the handoff token a new leg presents) is how a leg
*inherits* the level: it is recorded on the leg but is not a re-verification (nor is the
rejection of such a token: that is the system checking a leg, not the visitor re-proving
anything). A verification whose method is in `DERIVED_METHODS` records a further subject the
same proof vouches for (the phone on file of a member just verified by KBA, `tel:+E164`, what
SMS/PSTN legs are matched by): not a re-verification either. A higher level than reached so
far is a step-up, not a re-verification.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Literal

from pydantic import BaseModel, ConfigDict

from threadline.ledger import events as ev
from threadline.ledger.envelope import RecordedEvent
from threadline.projections.errors import ProjectionError

INHERITING_METHODS = frozenset({"handoff_token"})
DERIVED_METHODS = frozenset({"phone_on_file"})
CheckKind = Literal["claimed", "verified", "failed"]


def is_reverification(reached: int, data: ev.IdentityVerified | ev.VerificationFailed) -> bool:
    """Whether this check, in a conversation already verified at level `reached`, made the
    visitor prove who they are again. A handoff token (and its rejection) is the system
    checking a leg, not the visitor re-proving anything; a derived subject (the phone on
    file recorded with a KBA pass) is part of the check that vouched for it."""
    if data.method in INHERITING_METHODS or data.method in DERIVED_METHODS:
        return False
    if isinstance(data, ev.IdentityVerified):
        return reached >= data.level
    return reached > 0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Check(_Frozen):
    """One identity event, with what it meant at the time."""

    position: int
    kind: CheckKind
    leg_id: str | None
    channel: ev.Channel | None
    method: str
    subject: str | None = None
    level: int | None = None
    reason: str | None = None
    inherited: bool = False
    reverification: bool = False


class LegIdentity(_Frozen):
    leg_id: str
    channel: ev.Channel
    opened_position: int
    level: int = 0
    method: str | None = None
    inherited: bool = False
    reverified: bool = False
    failures: int = 0


class IdentityState(_Frozen):
    conversation_id: str | None = None
    started_channel: ev.Channel | None = None
    claimed_subject: str | None = None
    claimed_method: str | None = None
    subject: str | None = None
    level: int = 0
    method: str | None = None
    verified_leg_id: str | None = None
    verified_channel: ev.Channel | None = None
    verified_position: int | None = None
    legs: tuple[LegIdentity, ...] = ()
    checks: tuple[Check, ...] = ()
    failures: int = 0
    reverifications: int = 0
    last_position: int = 0

    @property
    def verified(self) -> bool:
        return self.level > 0

    @property
    def reverified(self) -> bool:
        return self.reverifications > 0

    def leg(self, leg_id: str) -> LegIdentity | None:
        return next((leg for leg in self.legs if leg.leg_id == leg_id), None)


class IdentityFold:
    def __init__(self, start: IdentityState | None = None) -> None:
        s = start or IdentityState()
        self.head = s.model_dump(exclude={"legs", "checks"})
        self.legs = {leg.leg_id: leg for leg in s.legs}
        self.checks = list(s.checks)

    def apply(self, e: RecordedEvent) -> None:
        cid = self.head["conversation_id"]
        if cid is None:
            self.head["conversation_id"] = e.conversation_id
        elif e.conversation_id != cid:
            raise ProjectionError(
                f"event of conversation {e.conversation_id} folded into the identity of {cid}"
            )
        if e.position <= self.head["last_position"]:
            return
        self.head["last_position"] = e.position
        handler = _HANDLERS.get(e.type)
        if handler is not None and isinstance(e.data, handler[0]):
            handler[1](self, e)

    def channel_of(self, leg_id: str | None) -> ev.Channel | None:
        leg = self.legs.get(leg_id) if leg_id is not None else None
        if leg is not None:
            return leg.channel
        started: ev.Channel | None = self.head["started_channel"]
        return started

    def update_leg(self, leg_id: str | None, **update: object) -> None:
        leg = self.legs.get(leg_id) if leg_id is not None else None
        if leg is not None:
            self.legs[leg.leg_id] = leg.model_copy(update=update)

    def snapshot(self) -> IdentityState:
        return IdentityState.model_construct(
            **self.head, legs=tuple(self.legs.values()), checks=tuple(self.checks)
        )


def _started(f: IdentityFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.ConversationStarted)
    f.head["started_channel"] = e.data.channel


def _leg_opened(f: IdentityFold, e: RecordedEvent) -> None:
    assert isinstance(e.data, ev.LegOpened)
    if e.leg_id is not None and e.leg_id not in f.legs:
        f.legs[e.leg_id] = LegIdentity.model_construct(
            leg_id=e.leg_id,
            channel=e.data.channel,
            opened_position=e.position,
            level=0,
            method=None,
            inherited=False,
            reverified=False,
            failures=0,
        )


def _claimed(f: IdentityFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.IdentityClaimed)
    f.head.update(claimed_subject=d.subject, claimed_method=d.method)
    f.checks.append(
        Check(
            position=e.position,
            kind="claimed",
            leg_id=e.leg_id,
            channel=f.channel_of(e.leg_id),
            method=d.method,
            subject=d.subject,
        )
    )


def _verified(f: IdentityFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.IdentityVerified)
    reached: int = f.head["level"]
    inherited = d.method in INHERITING_METHODS
    again = is_reverification(reached, d)
    if again:
        f.head["reverifications"] += 1
    leg = f.legs.get(e.leg_id) if e.leg_id is not None else None
    if leg is not None and d.level >= leg.level:
        f.update_leg(
            leg.leg_id,
            level=d.level,
            method=d.method,
            inherited=inherited,
            reverified=leg.reverified or again,
        )
    elif leg is not None and again:
        f.update_leg(leg.leg_id, reverified=True)
    if d.level > reached:  # where the level was *proven*; inheriting legs keep pointing here
        f.head.update(
            level=d.level,
            method=d.method,
            subject=d.subject,
            verified_leg_id=e.leg_id,
            verified_channel=f.channel_of(e.leg_id),
            verified_position=e.position,
        )
    f.checks.append(
        Check(
            position=e.position,
            kind="verified",
            leg_id=e.leg_id,
            channel=f.channel_of(e.leg_id),
            method=d.method,
            subject=d.subject,
            level=d.level,
            inherited=inherited,
            reverification=again,
        )
    )


def _failed(f: IdentityFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.VerificationFailed)
    again = is_reverification(f.head["level"], d)
    f.head["failures"] += 1
    if again:
        f.head["reverifications"] += 1
    leg = f.legs.get(e.leg_id) if e.leg_id is not None else None
    if leg is not None:
        f.update_leg(leg.leg_id, failures=leg.failures + 1, reverified=leg.reverified or again)
    f.checks.append(
        Check(
            position=e.position,
            kind="failed",
            leg_id=e.leg_id,
            channel=f.channel_of(e.leg_id),
            method=d.method,
            reason=d.reason,
            reverification=again,
        )
    )


def _erased(f: IdentityFold, e: RecordedEvent) -> None:
    d = e.data
    assert isinstance(d, ev.SubjectErased)
    for key in ("subject", "claimed_subject"):
        if f.head[key] == d.subject:
            f.head[key] = None
    f.checks = [
        c.model_copy(update={"subject": None}) if c.subject == d.subject else c for c in f.checks
    ]


_Handler = Callable[[IdentityFold, RecordedEvent], None]
_HANDLERS: dict[str, tuple[type[ev.EventData], _Handler]] = {
    "ConversationStarted": (ev.ConversationStarted, _started),
    "LegOpened": (ev.LegOpened, _leg_opened),
    "IdentityClaimed": (ev.IdentityClaimed, _claimed),
    "IdentityVerified": (ev.IdentityVerified, _verified),
    "VerificationFailed": (ev.VerificationFailed, _failed),
    "SubjectErased": (ev.SubjectErased, _erased),
}


def build_identity(
    events: Iterable[RecordedEvent],
    *,
    start: IdentityState | None = None,
    upto: int | None = None,
) -> IdentityState:
    """Folds one conversation's events into its identity state (`upto`: as of a position)."""
    fold = IdentityFold(start)
    for event in events:
        if upto is not None and event.position > upto:
            break
        fold.apply(event)
    return fold.snapshot()
