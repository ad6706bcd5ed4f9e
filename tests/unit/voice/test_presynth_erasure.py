"""Erasure reaches the first utterance prepared at a handoff's acceptance (issue 19): the
composed text (`handoff/prepared.py`) and its pre-synthesised audio (`presynth.py`) go when
the subject is erased — appended here at once, appended by another process within one expiry
scan — and a later leg speaks only what its redeem composed from the erased context."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.voice import eventually
from tests.unit.handoff.handoff_helpers import january_claim_chat
from tests.unit.voice.test_voice_pipeline import FakeSTT, play_out
from tests.unit.voice.test_voice_presynth import GatedTTS, leg
from threadline.channels.voice.presynth import FirstAudioCache
from threadline.channels.voice.sessions import VoiceSessions
from threadline.channels.voice.settings import VoiceSettings
from threadline.handoff.first_utterance import Utterance
from threadline.handoff.prepared import PreparedUtterance, PreparedUtterances
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.erasure import erase_subject
from threadline.ledger.shredding import MARK_INTERVAL_S
from threadline.ledger.store import Ledger, open_ledger

pytestmark = pytest.mark.anyio
SUBJECT = "MBR-100234"
# What the chat said that a first utterance restates (january_claim_chat).
PERSONAL = ("January", "CLM-4821", "2,340", "HIPAA")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    store = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield store
    store.close()


async def _prepared(ledger: Ledger) -> tuple[HandoffService, VoiceSessions, GatedTTS, str, str]:
    january_claim_chat(ledger, "A")
    handoffs = HandoffService(ledger, signer=Signer(b"s" * 32, "handoff"))
    tts = GatedTTS()  # the gate stays shut: synthesis is still running at the erasure
    sessions = VoiceSessions(ledger, handoffs, settings=VoiceSettings(), stt=FakeSTT(), tts=tts)
    ticket = handoffs.request_handoff("A")
    sessions.prepare("A", ticket.handoff_id)
    await asyncio.gather(*sessions._preparing)
    assert len(handoffs.prepared) == 1
    assert len(sessions.first_audio) == 1
    [entry] = sessions.first_audio._entries.values()
    assert any(word in entry.text for word in PERSONAL), entry.text  # it is personal
    await eventually(lambda: len(entry.sentences) == 1)
    return handoffs, sessions, tts, ticket.token, entry.text


async def _later_leg_speaks_no_erased_text(
    handoffs: HandoffService, sessions: VoiceSessions, tts: GatedTTS, token: str, erased: str
) -> None:
    grant = await asyncio.to_thread(handoffs.redeem, token, channel="webrtc")
    assert grant.first_utterance != erased
    assert sessions.first_audio.take(("A", grant.handoff_id), grant.first_utterance) is None
    tts.gate.set()
    p, sink = leg(tts)
    await p.say(grant.first_utterance, None)
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    # (The dropped entry's synthesis may finish the one sentence it was in; nobody hears it.)
    for text in (grant.first_utterance, spoken.text, spoken.spoken_text):
        assert not any(word in (text or "") for word in PERSONAL), text
    await sessions.close_all()


async def test_an_erasure_here_drops_the_prepared_text_and_audio_at_once(ledger: Ledger) -> None:
    handoffs, sessions, tts, token, text = await _prepared(ledger)
    [entry] = sessions.first_audio._entries.values()
    # Erased on another thread (an API request), no expiry scan run.
    await asyncio.to_thread(erase_subject, ledger, SUBJECT)
    assert len(handoffs.prepared) == 0
    await eventually(lambda: len(sessions.first_audio) == 0)
    assert entry.abandoned  # its synthesis stops too
    await _later_leg_speaks_no_erased_text(handoffs, sessions, tts, token, text)


async def test_an_erasure_by_another_process_drops_them_at_the_next_expiry_scan(
    ledger: Ledger, tmp_path: Path
) -> None:
    handoffs, sessions, tts, token, text = await _prepared(ledger)
    other = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")  # the CLI, another replica
    try:
        await asyncio.to_thread(erase_subject, other, SUBJECT)
    finally:
        other.close()
    assert len(handoffs.prepared) == 1  # this process has not seen it yet
    await asyncio.to_thread(handoffs.expire_stale)
    assert len(handoffs.prepared) == 0
    await eventually(lambda: len(sessions.first_audio) == 0)
    # This process's key cache learns of another's erasure within MARK_INTERVAL_S (docs/privacy.md).
    await asyncio.sleep(MARK_INTERVAL_S + 0.05)
    await _later_leg_speaks_no_erased_text(handoffs, sessions, tts, token, text)


def _utterance(cid: str) -> PreparedUtterance:
    later = datetime.now(UTC) + timedelta(minutes=1)
    return PreparedUtterance(cid, "h1", "webrtc", 0, 3, Utterance("About your claim."), later)


def test_a_text_composed_before_an_erasure_is_not_kept_after_it() -> None:
    cache = PreparedUtterances()
    since = cache.erasures  # read before composing
    cache.drop_conversation("A")  # the erasure lands while composing
    now = datetime.now(UTC)
    assert cache.put(_utterance("A"), now, since=since) is False
    assert len(cache) == 0
    assert cache.put(_utterance("B"), now, since=since) is True  # other conversations unaffected
    assert cache.put(_utterance("A"), now, since=cache.erasures) is True  # composed after it


async def test_a_closed_cache_no_longer_follows_the_handoff_services_erasures(
    ledger: Ledger,
) -> None:
    handoffs, sessions, tts, _token, _text = await _prepared(ledger)
    tts.gate.set()  # closing lets the running sentences finish
    await sessions.close_all()
    before = sessions.first_audio.erasures
    handoffs.prepared.drop_conversation("A")
    assert sessions.first_audio.erasures == before


async def test_audio_of_a_text_composed_before_an_erasure_is_not_started() -> None:
    cache = FirstAudioCache(GatedTTS(), 48_000)
    since = cache.erasures
    await asyncio.to_thread(cache.erased, "A")
    later = datetime.now(UTC) + timedelta(minutes=1)
    assert cache.start(("A", "h1"), "About your claim.", later, since=since) is None
    assert cache.start(("B", "h1"), "About your claim.", later, since=since) is not None
    await cache.aclose()


def test_an_erasure_seen_twice_drops_only_what_was_composed_before_it(ledger: Ledger) -> None:
    """An erasure appended here is seen at once (`watch`) and again by the expiry scan; the
    second sighting must not drop a first utterance composed since, from the erased context
    (nothing personal is left in it, and the leg would have to compose it again)."""
    january_claim_chat(ledger, "A")
    handoffs = HandoffService(ledger, signer=Signer(b"s" * 32, "handoff"))
    dropped: list[str] = []
    handoffs.prepared.on_drop(dropped.append)
    first = handoffs.request_handoff("A")
    assert handoffs.prepare_first_utterance("A", first.handoff_id) is not None
    erase_subject(ledger, SUBJECT)
    assert (len(handoffs.prepared), dropped) == (0, ["A"])
    after = handoffs.request_handoff("A")
    made = handoffs.prepare_first_utterance("A", after.handoff_id)
    assert made is not None
    assert not any(word in made.utterance.text for word in PERSONAL), made.utterance.text
    handoffs.expire_stale()  # reads the same SubjectErased from the global log
    assert (len(handoffs.prepared), dropped) == (1, ["A"])
