"""Visitor tokens, API keys, rate limiting and access rules, without a server."""

from __future__ import annotations

import uuid

import pytest

from threadline.access.authfail import FailedAuthGate
from threadline.access.errors import (
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    RateLimitedError,
    ServiceUnavailableError,
    UnauthenticatedError,
)
from threadline.access.keys import KeyVerifier, MemoryKeyStore, new_key
from threadline.access.policy import KeyPrincipal, TenantDirectory, VisitorPrincipal, authorize
from threadline.access.ratelimit import RateLimiter
from threadline.access.tokens import VisitorTokens
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import ConversationStarted, LegOpened
from threadline.ledger.store import open_ledger

SECRET = b"s" * 32


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_visitor_token_round_trip_and_expiry() -> None:
    clock = Clock()
    tokens = VisitorTokens(SECRET, ttl_s=60, clock=clock)
    token = tokens.issue("c1", "leg1", "default")
    claims = tokens.verify(token)
    assert (claims.conversation_id, claims.leg_id, claims.tenant) == ("c1", "leg1", "default")
    clock.now += 61
    with pytest.raises(UnauthenticatedError, match="expired"):
        tokens.verify(token)


def test_visitor_token_rejects_tampering_other_keys_and_other_purposes() -> None:
    tokens = VisitorTokens(SECRET, ttl_s=60)
    token = tokens.issue("c1", "leg1", "default")
    version, body, mac = token.split(".")
    forged = f"{version}.{body[:-2]}AA.{mac}"
    for bad in [forged, token + "x", "", "tl1..", "nope"]:
        with pytest.raises(UnauthenticatedError):
            tokens.verify(bad)
    with pytest.raises(UnauthenticatedError):
        VisitorTokens(b"t" * 32, ttl_s=60).verify(token)
    handoff_token = Signer(SECRET, "handoff").issue({"cid": "c1"}, now=1e9, ttl_s=60)
    with pytest.raises(UnauthenticatedError):
        tokens.verify(handoff_token)


def test_api_keys_are_stored_hashed_and_verified() -> None:
    store = MemoryKeyStore()
    token, record = new_key("sms-adapter", "acme")
    store.add(record)
    secret = token.split("_", 2)[2]  # the secret itself may contain "_"
    assert secret not in repr(record)
    verifier = KeyVerifier(store)
    assert verifier.verify(token).tenant == "acme"
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    with pytest.raises(UnauthenticatedError):
        verifier.verify(wrong)
    with pytest.raises(UnauthenticatedError):
        verifier.verify("tlk_" + "0" * 16 + "_" + "A" * 43)


def test_revoked_key_stops_working_after_the_cache_window() -> None:
    clock = Clock()
    store = MemoryKeyStore()
    token, record = new_key("k", "default")
    store.add(record)
    verifier = KeyVerifier(store, cache_s=30, clock=clock)
    verifier.verify(token)
    assert store.revoke(record.key_id)
    clock.now += 31
    with pytest.raises(UnauthenticatedError):
        verifier.verify(token)


@pytest.mark.parametrize("name", ["", "bad/name", "x" * 65, " lead"])
def test_key_names_are_checked(name: str) -> None:
    with pytest.raises(InvalidInputError):
        new_key(name, "default")


def test_rate_limiter_refills_and_keys_are_independent() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=2.0, burst=3, clock=clock)
    for _ in range(3):
        limiter.check("a")
    with pytest.raises(RateLimitedError) as info:
        limiter.check("a")
    assert info.value.retry_after_s == pytest.approx(0.5)
    limiter.check("b")
    clock.now += 0.5
    limiter.check("a")


def test_access_rules() -> None:
    ledger = open_ledger("memory://")
    for cid, tenant in [("a", "default"), ("b", "acme")]:
        ledger.append_batch(
            cid,
            [
                NewEvent("ConversationStarted", ConversationStarted(channel="chat", tenant=tenant)),
                NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="l"),
            ],
        )
    directory = TenantDirectory(ledger)
    visitor = VisitorPrincipal("a", "l", "default")
    authorize(visitor, "a", directory)
    with pytest.raises(ForbiddenError):
        authorize(visitor, "b", directory)
    key = KeyPrincipal("k", "adapter", "default")
    authorize(key, "a", directory)
    with pytest.raises(NotFoundError):
        authorize(key, "b", directory)
    with pytest.raises(NotFoundError):
        authorize(key, uuid.uuid4().hex, directory)
    with pytest.raises(UnauthenticatedError):
        authorize(None, "a", directory)
    ledger.close()


def test_an_unreachable_key_store_is_unavailable_not_unauthenticated() -> None:
    class Down(MemoryKeyStore):
        def get(self, key_id: str) -> None:
            raise OSError("connection refused")

    token, _ = new_key("k", "default")
    with pytest.raises(ServiceUnavailableError):
        KeyVerifier(Down()).verify(token)


def test_metrics_runner_wakeups_are_thinned_not_lost() -> None:
    from threadline.channels.adapters import ThrottledWakeLog

    ledger = open_ledger("memory://")
    log = ThrottledWakeLog(ledger, min_interval_s=3600)
    woken: list[int] = []
    stop = log.subscribe(lambda events: woken.append(len(events)))
    for i in range(5):
        ledger.append(f"c{i}", NewEvent("ConversationStarted", ConversationStarted(channel="chat")))
    stop()
    assert woken == [1]  # the first append wakes the runner; the rest wait for its poll
    assert log.max_sequence() == 5
    assert len(log.read_all(after=0)) == 5
    ledger.close()


def test_failed_auth_gate_refuses_before_the_next_attempt_until_refilled() -> None:
    clock = Clock()
    gate = FailedAuthGate(RateLimiter(1.0, 2, clock=clock), clock=clock)
    gate.check("1.2.3.4")
    gate.failed("1.2.3.4")
    gate.failed("1.2.3.4")
    with pytest.raises(RateLimitedError):
        gate.failed("1.2.3.4")
    with pytest.raises(RateLimitedError):
        gate.check("1.2.3.4")  # refused before its next credential is even looked at
    gate.check("5.6.7.8")
    clock.now += 2
    gate.check("1.2.3.4")
    assert gate.failures == 3
