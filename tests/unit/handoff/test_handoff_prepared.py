"""The first utterance composed at acceptance (`prepare_first_utterance`) and used by `redeem`
only when the conversation has not moved; per process, bounded, expiring with the token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from tests.unit.handoff.handoff_helpers import add, january_claim_chat
from threadline.handoff.first_utterance import OfflineUtterances, Utterance
from threadline.handoff.prepared import PreparedUtterance, PreparedUtterances
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.events import (
    HandoffChannel,
    HandoffCompleted,
    MessagePosted,
    SubjectErased,
)
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context_model import AgentContext

SIGNER = Signer(b"s" * 32, "handoff")
NOW = datetime(2026, 12, 4, 3, 0, tzinfo=UTC)


class Numbered:
    """Offline text, numbered by call: which composition was spoken is visible in the record
    (a real model is not deterministic either)."""

    def __init__(self) -> None:
        self.calls = 0

    def compose(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> Utterance:
        self.calls += 1
        text = OfflineUtterances().generate(
            context, level=level, reason=reason, channel=channel, inbound=inbound
        )
        return Utterance(f"{text} #{self.calls}")


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    january_claim_chat(store, "A")
    yield store
    store.close()


def service(ledger: Ledger, composer: Numbered) -> HandoffService:
    return HandoffService(ledger, signer=SIGNER, utterances=composer, clock=lambda: NOW)


def completed(ledger: Ledger) -> HandoffCompleted:
    (done,) = [e.data for e in ledger.read("A") if e.type == "HandoffCompleted"]
    assert isinstance(done, HandoffCompleted)
    return done


def test_redeem_speaks_the_utterance_composed_at_acceptance(ledger: Ledger) -> None:
    composer = Numbered()
    handoffs = service(ledger, composer)
    ticket = handoffs.request_handoff("A")
    prepared = handoffs.prepare_first_utterance("A", ticket.handoff_id)
    assert prepared is not None
    assert prepared.text.endswith("#1")
    assert prepared.expires_at == NOW + timedelta(seconds=handoffs.settings.handoff_token_ttl_s)
    grant = handoffs.redeem(ticket.token, channel="webrtc")
    assert composer.calls == 1  # not composed again
    assert grant.first_utterance == prepared.text == completed(ledger).first_utterance
    assert len(handoffs.prepared) == 0  # used once


def test_a_conversation_that_moved_after_acceptance_is_composed_again(ledger: Ledger) -> None:
    composer = Numbered()
    handoffs = service(ledger, composer)
    ticket = handoffs.request_handoff("A")
    prepared = handoffs.prepare_first_utterance("A", ticket.handoff_id)
    assert prepared is not None
    add(ledger, "A", MessagePosted(role="visitor", text="Also my order ORD-5531 never arrived"))
    grant = handoffs.redeem(ticket.token, channel="webrtc")
    assert composer.calls == 2
    assert grant.first_utterance.endswith("#2")
    assert completed(ledger).first_utterance == grant.first_utterance != prepared.text
    assert "ORD-5531" in grant.first_utterance  # what the visitor added is in what is said


def test_a_redeem_on_another_replica_composes_its_own(ledger: Ledger) -> None:
    composer_a, composer_b = Numbered(), Numbered()
    replica_a, replica_b = service(ledger, composer_a), service(ledger, composer_b)
    ticket = replica_a.request_handoff("A")
    assert replica_a.prepare_first_utterance("A", ticket.handoff_id) is not None
    grant = replica_b.redeem(ticket.token, channel="webrtc")
    assert (composer_a.calls, composer_b.calls) == (1, 1)
    assert completed(ledger).first_utterance == grant.first_utterance
    # A's entry is never used: A's expiry scan sees the handoff completed and drops it.
    assert len(replica_a.prepared) == 1
    replica_a.expire_stale(NOW)
    assert len(replica_a.prepared) == 0


def test_the_expiry_scan_purges_an_expired_entry_on_a_quiet_server(ledger: Ledger) -> None:
    handoffs = service(ledger, Numbered())
    ticket = handoffs.request_handoff("A")
    prepared = handoffs.prepare_first_utterance("A", ticket.handoff_id)
    assert prepared is not None
    handoffs.expire_stale(NOW)
    assert len(handoffs.prepared) == 1  # still valid
    handoffs.expire_stale(prepared.expires_at)  # no put, no redeem: the scan alone purges
    assert len(handoffs.prepared) == 0


def test_an_erased_subject_takes_the_prepared_utterance_with_it(ledger: Ledger) -> None:
    handoffs = service(ledger, Numbered())
    ticket = handoffs.request_handoff("A")
    assert handoffs.prepare_first_utterance("A", ticket.handoff_id) is not None
    handoffs.prepared.put(
        PreparedUtterance("B", "hb", "webrtc", 0, 1, Utterance("hi B"), NOW + timedelta(hours=1)),
        NOW,
    )
    add(ledger, "A", SubjectErased(subject="subject-ref", reason="request"))
    handoffs.expire_stale(NOW)
    assert len(handoffs.prepared) == 1  # only B's remains
    assert handoffs.redeem(ticket.token, channel="webrtc").first_utterance.endswith("#2")


def test_only_an_accepted_handoff_is_prepared(ledger: Ledger) -> None:
    handoffs = service(ledger, Numbered())
    assert handoffs.prepare_first_utterance("A", "h-offer") is None  # offered, not accepted
    ticket = handoffs.request_handoff("A")
    handoffs.redeem(ticket.token, channel="webrtc")
    assert handoffs.prepare_first_utterance("A", ticket.handoff_id) is None  # completed


def entry(hid: str, expires: datetime, version: int = 5) -> PreparedUtterance:
    return PreparedUtterance("A", hid, "webrtc", 2, version, Utterance(f"hi {hid}"), expires)


def take(cache: PreparedUtterances, hid: str, now: datetime = NOW) -> Utterance | None:
    return cache.take("A", hid, version=5, level=2, channel="webrtc", inbound=False, now=now)


def test_the_cache_is_bounded_expires_and_matches_the_exact_state() -> None:
    cache = PreparedUtterances(max_entries=2)
    later = NOW + timedelta(seconds=60)
    for hid in ("h1", "h2", "h3"):
        cache.put(entry(hid, later), NOW)
    assert len(cache) == 2
    assert take(cache, "h1") is None  # the oldest went first
    assert take(cache, "h2") == Utterance("hi h2")
    assert take(cache, "h2") is None  # used once
    cache.put(entry("h4", later, version=4), NOW)
    assert take(cache, "h4") is None  # composed from an older stream version
    cache.put(entry("h5", later), NOW)
    assert take(cache, "h5", now=later) is None  # expired with the token
    cache.put(entry("h6", NOW), NOW - timedelta(seconds=1))
    cache.put(entry("h7", later), NOW)  # purges the expired h6
    assert len(cache) == 2  # h3 and h7
    assert cache.take("A", "h7", version=5, level=2, channel="pstn", inbound=False, now=NOW) is None
