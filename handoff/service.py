"""The switch-to-voice life cycle, recorded as events on the conversation stream.

    HandoffOffered → HandoffAccepted → LegOpened(voice) + IdentityVerified(handoff_token)
                                        + HandoffCompleted(first utterance)
                   ↘ HandoffExpired | HandoffDeclined

The stream is the only state. Every decision reads the conversation, folds it into the
agent context, and appends with the version it read as the expected version, so two
replicas (or two tabs) racing for the same handoff cannot both win: the loser gets a
ConcurrencyConflictError, re-reads, and now sees the handoff completed. That is also what makes
a token single-use across restarts and replicas — a token is spent exactly when its
handoff is completed in the stream.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import NoReturn

from threadline.handoff import tokens
from threadline.handoff.errors import (
    HandoffNotAllowedError,
    TokenError,
    TokenRejectedError,
    UnknownConversationError,
)
from threadline.handoff.first_utterance import OfflineUtterances, UtteranceComposer
from threadline.handoff.prepared import PreparedUtterance, PreparedUtterances
from threadline.handoff.settings import HandoffSettings
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent, RecordedEvent
from threadline.ledger.errors import ConcurrencyConflictError, IdempotencyConflictError, LedgerError
from threadline.ledger.events import (
    EventData,
    HandoffAccepted,
    HandoffChannel,
    HandoffCompleted,
    HandoffDeclined,
    HandoffExpired,
    HandoffOffered,
    IdentityVerified,
    LegOpened,
    VerificationFailed,
)
from threadline.ledger.store import Ledger
from threadline.projections.context import build_context
from threadline.projections.context_model import AgentContext, Handoff

log = logging.getLogger(__name__)

ACTOR = "handoff"
TOKEN_METHOD = "handoff_token"  # noqa: S105 - a method name, not a secret
MAX_ATTEMPTS = 8
# HandoffOffered.reason when the visitor asked for voice without an offer.
VISITOR_REQUEST = "visitor_request"
# An accepted handoff is closed this long after its token expired, so that a redemption
# that passed the token check at the last second can still append first.
EXPIRY_GRACE_S = 5
# SubjectErased too: a conversation's prepared first utterance is dropped with its subject.
_HANDOFF_TYPES = frozenset(
    {
        "HandoffOffered",
        "HandoffAccepted",
        "HandoffCompleted",
        "HandoffExpired",
        "HandoffDeclined",
        "SubjectErased",
    }
)
# Reasons `tokens.verify` gives only after the signature verified: such a token was issued
# by us, so its refusal may be recorded on the conversation it names.
VERIFIED_REJECTIONS = frozenset({"expired"})
_IDS = uuid.UUID("6f1c9a52-3d0e-4f5b-9a3e-2f7c1d8b4e60")


def new_handoff_id() -> str:
    return f"ho_{uuid.uuid4().hex}"


def new_leg_id() -> str:
    return f"leg_{uuid.uuid4().hex}"


def completion_event_id(conversation_id: str, handoff_id: str) -> uuid.UUID:
    """One id per handoff for its completion: the ledger refuses a second, different
    HandoffCompleted for the same handoff even without an expected version."""
    return uuid.uuid5(_IDS, f"{conversation_id}/{handoff_id}/completed")


@dataclass(frozen=True, slots=True)
class HandoffTicket:
    """What the widget gets when the visitor clicks "Switch to voice"."""

    conversation_id: str
    handoff_id: str
    token: str
    expires_at: datetime
    channel: HandoffChannel
    level: int


@dataclass(frozen=True, slots=True)
class VoiceLegGrant:
    """What the voice pipeline gets for a valid token: the new leg, the level it inherited,
    the first sentence to speak, and the context it was generated from (as of just before
    the leg opened)."""

    conversation_id: str
    handoff_id: str
    leg_id: str
    channel: HandoffChannel
    level: int
    first_utterance: str
    context: AgentContext


class HandoffService:
    def __init__(
        self,
        ledger: Ledger,
        *,
        signer: Signer | None = None,
        settings: HandoffSettings | None = None,
        utterances: UtteranceComposer | None = None,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.ledger = ledger
        self.settings = settings or HandoffSettings()
        self.signer = signer or Signer.from_settings(tokens.PURPOSE, self.settings)
        self.utterances = utterances or OfflineUtterances()
        self.clock = clock or (lambda: datetime.now(UTC))
        # First utterances composed at acceptance, for `redeem` (per process, bounded).
        self.prepared = PreparedUtterances()
        self.prepared.watch(ledger)  # an erasure here drops the conversation's entries at once
        self._expiry_lock = threading.Lock()
        self._scanned = 0
        self._deadlines: dict[tuple[str, str], datetime] = {}
        # Tokens refused because their signature did not verify (never recorded as events).
        self.unverified_tokens = 0

    # -- reading --------------------------------------------------------------------------
    def context(self, conversation_id: str) -> AgentContext:
        events = self.ledger.read(conversation_id)
        if not events:
            raise UnknownConversationError(f"conversation {conversation_id} does not exist")
        return build_context(events)

    # -- the visitor asks for voice --------------------------------------------------------
    def request_handoff(
        self,
        conversation_id: str,
        channel: HandoffChannel = "webrtc",
        *,
        handoff_id: str | None = None,
        leg_id: str | None = None,
    ) -> HandoffTicket:
        """Accepts the open offer (or `handoff_id`, which must be the open offer); without
        one, records an offer and its acceptance at once (the visitor asked unprompted).
        A still-unredeemed earlier acceptance is declined as superseded, so at most one
        token per conversation is ever redeemable."""
        for _ in range(MAX_ATTEMPTS):
            ctx = self.context(conversation_id)
            active = ctx.active_handoff
            if handoff_id is not None and (
                active is None or active.handoff_id != handoff_id or active.status != "offered"
            ):
                raise HandoffNotAllowedError(f"handoff {handoff_id} is not an open offer")
            batch: list[NewEvent] = []
            if active is not None and active.status == "offered" and active.channel == channel:
                chosen = active.handoff_id
            else:
                if active is not None:
                    superseded = HandoffDeclined(handoff_id=active.handoff_id, reason="superseded")
                    batch.append(self._event(superseded, leg_id))
                chosen = new_handoff_id()
                offer = HandoffOffered(handoff_id=chosen, channel=channel, reason=VISITOR_REQUEST)
                batch.append(self._event(offer, leg_id))
            batch.append(self._event(HandoffAccepted(handoff_id=chosen, channel=channel), leg_id))
            try:
                self.ledger.append_batch(conversation_id, batch, expected_version=ctx.last_position)
            except ConcurrencyConflictError:
                continue
            now = self.clock()
            ttl = self.settings.handoff_token_ttl_s
            level = ctx.verification.level if ctx.verification.subject else 0
            token, claims = tokens.issue(
                self.signer,
                conversation_id=conversation_id,
                handoff_id=chosen,
                channel=channel,
                level=level,
                now=now.timestamp(),
                ttl_s=ttl,
            )
            expires = datetime.fromtimestamp(claims.expires_at, UTC)
            return HandoffTicket(conversation_id, chosen, token, expires, channel, level)
        raise HandoffNotAllowedError("the conversation is too busy to hand off; try again")

    def prepare_first_utterance(
        self, conversation_id: str, handoff_id: str
    ) -> PreparedUtterance | None:
        """Composes the first utterance of an accepted handoff now, from the context as it
        is, and keeps it for `redeem` (which uses it only if nothing was appended
        meanwhile). None if the handoff is not (or no longer) waiting for its leg, or its
        subject was erased while composing."""
        since = self.prepared.erasures  # before the read: an erasure after it refuses the put
        ctx = self.context(conversation_id)
        h = _find(ctx, handoff_id)
        if h is None or h.status != "accepted":
            return None
        level = ctx.verification.level if ctx.verification.subject else 0
        made = self.utterances.compose(ctx, level=level, reason=h.reason, channel=h.channel)
        now = self.clock()
        prepared = PreparedUtterance(
            conversation_id,
            handoff_id,
            h.channel,
            level,
            ctx.last_position,
            made,
            now + timedelta(seconds=self.settings.handoff_token_ttl_s),
        )
        if not self.prepared.put(prepared, now, since=since):
            return None
        return prepared

    def decline(self, conversation_id: str, handoff_id: str, *, reason: str | None = None) -> bool:
        """The visitor dismissed the offer. False if it was no longer open."""
        for _ in range(MAX_ATTEMPTS):
            ctx = self.context(conversation_id)
            h = _find(ctx, handoff_id)
            if h is None or h.status not in ("offered", "accepted"):
                return False
            event = self._event(HandoffDeclined(handoff_id=handoff_id, reason=reason), None)
            try:
                self.ledger.append(conversation_id, event, expected_version=ctx.last_position)
                return True
            except ConcurrencyConflictError:
                continue
        return False

    # -- the voice leg presents its token --------------------------------------------------
    def redeem(
        self,
        token: str,
        transport_ref: str | None = None,
        *,
        conversation_id: str | None = None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> VoiceLegGrant:
        """Opens the new leg at the inherited level, or raises TokenRejectedError after
        recording VerificationFailed(method=handoff_token, reason) — and nothing else — on
        the conversation the request addressed (`conversation_id`, else the one the token
        names); a token whose signature fails is refused with nothing recorded.
        `conversation_id`/`channel`, when given, must match the token. `inbound`: the
        visitor called in with the token (PSTN), which the first utterance reflects."""
        now = self.clock()
        try:
            claims = tokens.verify(self.signer, token, now=now.timestamp())
        except TokenError as exc:
            if exc.reason not in VERIFIED_REJECTIONS:
                # Its signature failed: nothing it claims is trusted, not even which
                # conversation it names, so nothing is recorded anywhere (an attacker
                # could otherwise write into any conversation, in any tenant).
                self.unverified_tokens += 1
                log.warning("handoff token refused before verification: %s", exc.reason)
                raise TokenRejectedError(
                    exc.reason, f"handoff token rejected: {exc.reason}"
                ) from None
            target = conversation_id or tokens.addressed_conversation(token)
            self._reject(target, exc.reason)
        if conversation_id is not None and claims.conversation_id != conversation_id:
            self._reject(conversation_id, "wrong_conversation")
        if channel is not None and claims.channel != channel:
            self._reject(claims.conversation_id, "wrong_channel")
        cid = claims.conversation_id
        for _ in range(MAX_ATTEMPTS):
            events = self.ledger.read(cid)
            if not events:
                self._reject(None, "unknown_conversation")
            ctx = build_context(events)
            h = _find(ctx, claims.handoff_id)
            if h is None:
                self._reject(cid, "unknown_handoff")
            if h.status == "completed":
                self._reject(cid, "replayed")
            if h.status in ("expired", "declined"):
                self._reject(cid, f"handoff_{h.status}")
            if h.status != "accepted":
                self._reject(cid, "not_accepted")
            subject = ctx.verification.subject
            level = min(claims.level, ctx.verification.level) if subject else 0
            reason = h.reason
            # Composed at acceptance if the conversation has not moved since; else now.
            made = self.prepared.take(
                cid, claims.handoff_id, version=ctx.last_position, level=level,
                channel=claims.channel, inbound=inbound, now=now,
            ) or self.utterances.compose(
                ctx, level=level, reason=reason, channel=claims.channel, inbound=inbound
            )  # fmt: skip
            first = made.text
            leg_id = new_leg_id()
            batch = [
                NewEvent(
                    "LegOpened",
                    LegOpened(channel=claims.channel, transport_ref=transport_ref),
                    leg_id=leg_id,
                    actor=ACTOR,
                )
            ]
            if level > 0 and subject:
                batch.append(
                    NewEvent(
                        "IdentityVerified",
                        IdentityVerified(method=TOKEN_METHOD, level=level, subject=subject),
                        leg_id=leg_id,
                        actor=ACTOR,
                    )
                )
            batch.extend(NewEvent(t, d, leg_id=leg_id, actor=ACTOR) for t, d in made.events)
            batch.append(
                NewEvent(
                    "HandoffCompleted",
                    HandoffCompleted(
                        handoff_id=claims.handoff_id, leg_id=leg_id, first_utterance=first
                    ),
                    event_id=completion_event_id(cid, claims.handoff_id),
                    leg_id=leg_id,
                    actor=ACTOR,
                )
            )
            try:
                self.ledger.append_batch(cid, batch, expected_version=ctx.last_position)
            except ConcurrencyConflictError:
                continue
            except IdempotencyConflictError:
                self._reject(cid, "replayed")
            return VoiceLegGrant(cid, claims.handoff_id, leg_id, claims.channel, level, first, ctx)
        raise HandoffNotAllowedError("the conversation is too busy to hand off; try again")

    def _reject(self, conversation_id: str | None, reason: str) -> NoReturn:
        if conversation_id:
            event = NewEvent(
                "VerificationFailed",
                VerificationFailed(method=TOKEN_METHOD, reason=reason),
                actor=ACTOR,
            )
            try:
                if self.ledger.version(conversation_id) > 0:
                    self.ledger.append(conversation_id, event)
            except LedgerError as exc:  # the rejection stands even if recording it failed
                log.warning("could not record a handoff token rejection: %s", type(exc).__name__)
        raise TokenRejectedError(reason, f"handoff token rejected: {reason}")

    # -- housekeeping ---------------------------------------------------------------------
    def expire_stale(self, now: datetime | None = None) -> list[tuple[str, str]]:
        """Closes offers nobody accepted within `handoff_offer_ttl_s` and acceptances whose
        token ran out, with HandoffExpired. Returns the (conversation, handoff) pairs closed.
        Prepared first utterances go too: expired, their handoff ended, or their subject erased.

        Pending handoffs are found from the global log, read incrementally from where the
        previous call stopped (the first call reads it all), so it is cheap to run every few
        seconds; the decision itself is re-checked on the conversation stream."""
        now = now or self.clock()
        closed: list[tuple[str, str]] = []
        with self._expiry_lock:
            self._scan()
            self.prepared.purge(now)
            due = sorted(k for k, deadline in self._deadlines.items() if deadline <= now)
            for cid, hid in due:
                if self._expire(cid, hid):
                    closed.append((cid, hid))
                self._deadlines.pop((cid, hid), None)
        return closed

    def _scan(self) -> None:
        offer_ttl = timedelta(seconds=self.settings.handoff_offer_ttl_s)
        token_ttl = timedelta(seconds=self.settings.handoff_token_ttl_s + EXPIRY_GRACE_S)
        while True:
            # Only handoff events are decoded: the scan runs every few seconds over everything
            # appended meanwhile, and decoding all of it was ~6% of a busy server's CPU.
            batch, last = self.ledger.read_all_of(_HANDOFF_TYPES, after=self._scanned, limit=500)
            if last == self._scanned:
                return
            for e in batch:
                self._track(e, offer_ttl, token_ttl)
            self._scanned = last

    def _track(self, e: RecordedEvent, offer_ttl: timedelta, token_ttl: timedelta) -> None:
        if e.type == "SubjectErased":
            self.prepared.erased(e)  # a no-op if `watch` already saw it appended here
            return
        hid = getattr(e.data, "handoff_id", None)
        if not isinstance(hid, str):
            return
        k = (e.conversation_id, hid)
        if e.type == "HandoffOffered":
            self._deadlines[k] = e.occurred_at + offer_ttl
        elif e.type == "HandoffAccepted":
            self._deadlines[k] = e.occurred_at + token_ttl
        else:
            self._deadlines.pop(k, None)
            self.prepared.discard(*k)  # ended, maybe on another replica: never redeemed here

    def _expire(self, cid: str, hid: str) -> bool:
        for _ in range(MAX_ATTEMPTS):
            ctx = self.context(cid)
            h = _find(ctx, hid)
            if h is None or h.status not in ("offered", "accepted"):
                return False
            event = self._event(HandoffExpired(handoff_id=hid), None)
            try:
                self.ledger.append(cid, event, expected_version=ctx.last_position)
                return True
            except ConcurrencyConflictError:
                continue
        return False

    @staticmethod
    def _event(data: EventData, leg_id: str | None) -> NewEvent:
        return NewEvent(type(data).__name__, data, leg_id=leg_id, actor=ACTOR)


def _find(ctx: AgentContext, handoff_id: str) -> Handoff | None:
    return next((h for h in ctx.handoffs if h.handoff_id == handoff_id), None)
