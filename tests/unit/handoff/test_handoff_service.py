from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.handoff.handoff_helpers import january_claim_chat, start_chat
from threadline.handoff.errors import (
    HandoffNotAllowedError,
    TokenRejectedError,
    UnknownConversationError,
)
from threadline.handoff.service import HandoffService
from threadline.handoff.settings import HandoffSettings
from threadline.handoff.signing import Signer
from threadline.ledger.store import Ledger, open_ledger

SIGNER = Signer(b"s" * 32, "handoff")


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(ledger: Ledger, clock: Clock) -> HandoffService:
    return HandoffService(ledger, signer=SIGNER, clock=clock)


def types(ledger: Ledger, cid: str, after: int = 0) -> list[str]:
    return [e.type for e in ledger.read(cid, after=after)]


def test_offer_accept_redeem_inherits_the_chat_level(
    ledger: Ledger, service: HandoffService
) -> None:
    january_claim_chat(ledger, "A")
    ticket = service.request_handoff("A", leg_id="leg_chat")
    assert ticket.handoff_id == "h-offer"
    assert ticket.level == 2
    before = ledger.version("A")
    grant = service.redeem(ticket.token, "pc-1")
    new = ledger.read("A", after=before)
    assert [e.type for e in new] == ["LegOpened", "IdentityVerified", "HandoffCompleted"]
    opened, verified, completed = (e.data for e in new)
    assert opened.model_dump() == {"channel": "webrtc", "transport_ref": "pc-1"}
    assert verified.model_dump() == {"method": "handoff_token", "level": 2, "subject": "MBR-100234"}
    assert completed.first_utterance == grant.first_utterance  # type: ignore[union-attr]
    assert {e.leg_id for e in new} == {grant.leg_id}
    assert "January claim" in grant.first_utterance
    assert "already verified" in grant.first_utterance
    assert "MBR-100234" not in grant.first_utterance
    assert "1984" not in grant.first_utterance
    # No challenge on the voice leg: nothing claimed, nothing failed.
    assert "IdentityClaimed" not in [e.type for e in new]


def test_unprompted_request_offers_and_accepts_at_once(
    ledger: Ledger, service: HandoffService
) -> None:
    january_claim_chat(ledger, "A", offer=None)
    v = ledger.version("A")
    ticket = service.request_handoff("A")
    new = ledger.read("A", after=v)
    assert [e.type for e in new] == ["HandoffOffered", "HandoffAccepted"]
    assert new[0].data.reason == "visitor_request"  # type: ignore[union-attr]
    assert service.redeem(ticket.token).handoff_id == ticket.handoff_id


def test_replay_is_rejected_and_only_the_rejection_recorded(
    ledger: Ledger, service: HandoffService
) -> None:
    january_claim_chat(ledger, "A")
    ticket = service.request_handoff("A")
    service.redeem(ticket.token)
    v = ledger.version("A")
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(ticket.token)
    assert err.value.reason == "replayed"
    (rejection,) = ledger.read("A", after=v)
    assert rejection.type == "VerificationFailed"
    assert rejection.data.model_dump() == {"method": "handoff_token", "reason": "replayed"}


def test_expired_token(ledger: Ledger, service: HandoffService, clock: Clock) -> None:
    january_claim_chat(ledger, "A")
    ticket = service.request_handoff("A")
    clock.now += timedelta(seconds=120)
    v = ledger.version("A")
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(ticket.token)
    assert err.value.reason == "expired"
    assert types(ledger, "A", v) == ["VerificationFailed"]


def test_forged_token_appends_nothing_anywhere_and_is_counted(
    ledger: Ledger, service: HandoffService, clock: Clock
) -> None:
    """Its claims are untrusted: recording on the conversation it names would let anyone
    write into any conversation (issue 17, class 2)."""
    january_claim_chat(ledger, "A")
    service.request_handoff("A")
    forger = HandoffService(ledger, signer=Signer(b"f" * 32, "handoff"), clock=clock)
    forged = forger.request_handoff("A").token  # right shape, wrong key
    head = ledger.max_sequence()
    for _ in range(100):
        with pytest.raises(TokenRejectedError) as err:
            service.redeem(forged)
        assert err.value.reason == "forged"
    with pytest.raises(TokenRejectedError):
        service.redeem(forged, conversation_id="A")  # even where the request addresses it
    assert ledger.max_sequence() == head
    assert service.unverified_tokens == 101


def test_cross_conversation_token(ledger: Ledger, service: HandoffService) -> None:
    january_claim_chat(ledger, "A")
    start_chat(ledger, "B")
    ticket = service.request_handoff("A")
    va, vb = ledger.version("A"), ledger.version("B")
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(ticket.token, conversation_id="B")
    assert err.value.reason == "wrong_conversation"
    assert types(ledger, "B", vb) == ["VerificationFailed"]
    assert ledger.version("A") == va
    # The token is still good for its own conversation.
    assert service.redeem(ticket.token, conversation_id="A").level == 2


def test_wrong_channel(ledger: Ledger, service: HandoffService) -> None:
    january_claim_chat(ledger, "A")
    ticket = service.request_handoff("A")
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(ticket.token, channel="pstn")
    assert err.value.reason == "wrong_channel"


@pytest.mark.parametrize("garbage", ["", "nonsense", "tl1.x.y", "tl1.e30.e30", "a" * 5000])
def test_unreadable_tokens_append_nothing(
    ledger: Ledger, service: HandoffService, garbage: str
) -> None:
    january_claim_chat(ledger, "A")
    before = ledger.max_sequence()
    with pytest.raises(TokenRejectedError):
        service.redeem(garbage)
    assert ledger.max_sequence() == before


def test_a_new_request_supersedes_an_unredeemed_one(
    ledger: Ledger, service: HandoffService
) -> None:
    january_claim_chat(ledger, "A")
    first = service.request_handoff("A")
    second = service.request_handoff("A")
    assert second.handoff_id != first.handoff_id
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(first.token)
    assert err.value.reason == "handoff_declined"
    assert service.redeem(second.token).handoff_id == second.handoff_id


def test_accepting_a_specific_offer(ledger: Ledger, service: HandoffService) -> None:
    january_claim_chat(ledger, "A")
    with pytest.raises(HandoffNotAllowedError):
        service.request_handoff("A", handoff_id="not-the-offer")
    assert service.request_handoff("A", handoff_id="h-offer").handoff_id == "h-offer"


def test_unknown_conversation(service: HandoffService) -> None:
    with pytest.raises(UnknownConversationError):
        service.request_handoff("nope")


def test_unverified_chat_gives_level_zero_and_no_identity_event(
    ledger: Ledger, service: HandoffService
) -> None:
    january_claim_chat(ledger, "A", verified=False)
    ticket = service.request_handoff("A")
    assert ticket.level == 0
    v = ledger.version("A")
    grant = service.redeem(ticket.token)
    assert grant.level == 0
    assert types(ledger, "A", v) == ["LegOpened", "HandoffCompleted"]
    assert "confirm who you are" in grant.first_utterance


def test_decline(ledger: Ledger, service: HandoffService) -> None:
    january_claim_chat(ledger, "A")
    assert service.decline("A", "h-offer", reason="visitor_dismissed")
    assert not service.decline("A", "h-offer")
    assert types(ledger, "A")[-1] == "HandoffDeclined"


def test_expire_stale(ledger: Ledger, clock: Clock) -> None:
    settings = HandoffSettings(handoff_token_ttl_s=60, handoff_offer_ttl_s=300)
    service = HandoffService(ledger, signer=SIGNER, clock=clock, settings=settings)
    january_claim_chat(ledger, "A")  # offered, never accepted
    january_claim_chat(ledger, "B", offer=None)
    ticket_b = service.request_handoff("B")  # accepted, never redeemed
    january_claim_chat(ledger, "C", offer=None)
    service.redeem(service.request_handoff("C").token)  # completed: never expires
    now = datetime.now(UTC)
    assert service.expire_stale(now) == []
    assert service.expire_stale(now + timedelta(seconds=70)) == [("B", ticket_b.handoff_id)]
    assert service.expire_stale(now + timedelta(seconds=310)) == [("A", "h-offer")]
    assert service.expire_stale(now + timedelta(days=1)) == []
    assert types(ledger, "B")[-1] == "HandoffExpired"
    clock.now = now  # even with a clock that says the token is still fresh...
    with pytest.raises(TokenRejectedError) as err:
        service.redeem(ticket_b.token)
    assert err.value.reason == "handoff_expired"  # ...the stream says it is closed


def test_single_use_across_replicas_and_restarts(tmp_path: Path, clock: Clock) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    setup = open_ledger(url)
    january_claim_chat(setup, "A")
    ticket = HandoffService(setup, signer=SIGNER, clock=clock).request_handoff("A")
    setup.close()

    replicas = [open_ledger(url) for _ in range(4)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(replicas))

    def redeem(store: Ledger) -> None:
        service = HandoffService(store, signer=SIGNER, clock=clock)
        barrier.wait()
        try:
            outcomes.append("granted:" + service.redeem(ticket.token).leg_id)
        except TokenRejectedError as exc:
            outcomes.append(exc.reason)

    threads = [threading.Thread(target=redeem, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in replicas:
        r.close()
    assert sorted(o.split(":")[0] for o in outcomes) == ["granted"] + ["replayed"] * 3

    restarted = open_ledger(url)
    with pytest.raises(TokenRejectedError) as err:
        HandoffService(restarted, signer=SIGNER, clock=clock).redeem(ticket.token)
    assert err.value.reason == "replayed"
    completed = [e for e in restarted.read("A") if e.type == "HandoffCompleted"]
    assert len(completed) == 1
    restarted.close()
