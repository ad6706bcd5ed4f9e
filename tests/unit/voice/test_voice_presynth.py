"""The first utterance's audio synthesised from the handoff's acceptance (`presynth.py`):
played without synthesising again, only for the text the redeem recorded, per process,
bounded and expiring; wired from `VoiceSessions.prepare` to the handoff service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from harness.voice import RecordingSink, eventually
from tests.unit.handoff.handoff_helpers import january_claim_chat
from tests.unit.voice.test_voice_pipeline import FakeSTT, FakeTTS, play_out
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import VisitorTurn
from threadline.channels.voice.presynth import LOOKAHEAD, FirstAudioCache, PreparedAudio
from threadline.channels.voice.providers import make_tts, system_phrases
from threadline.channels.voice.sessions import VoiceSessions
from threadline.channels.voice.settings import VoiceSettings
from threadline.channels.voice.tts_piper import PiperTTS, split_sentences
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.store import open_ledger

pytestmark = pytest.mark.anyio
RATE = 48_000
TEXT = "Thanks for switching to voice. I can see your claim. Let me pull that up."
KEY = ("A", "h1")


class GatedTTS(FakeTTS):
    """Sentence by sentence; each sentence after the first waits for `gate`."""

    def __init__(self) -> None:
        self.sentences: list[str] = []
        self.gate = asyncio.Event()

    async def synthesize_sentences(
        self, text: str, sample_rate: int
    ) -> AsyncIterator[tuple[str, bytes]]:
        for i, sentence in enumerate(split_sentences(text)):
            if i:
                await self.gate.wait()
            self.sentences.append(sentence)
            yield sentence, await self.synthesize(sentence, sample_rate)


def later(seconds: float = 60) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def leg(tts: FakeTTS) -> tuple[VoicePipeline, RecordingSink]:
    sink = RecordingSink()

    async def on_turn(turn: VisitorTurn) -> str | None:
        return None

    p = VoicePipeline(leg_id="L", stt=FakeSTT(), tts=tts, on_turn=on_turn, record=sink)
    p.start()
    return p, sink


async def test_prepared_audio_plays_at_once_without_synthesising_again() -> None:
    tts = GatedTTS()
    tts.gate.set()
    cache = FirstAudioCache(tts, RATE)
    entry = cache.start(KEY, TEXT, later())
    assert entry is not None
    await eventually(lambda: len(entry.sentences) == LOOKAHEAD)
    await asyncio.sleep(0.05)
    # Two sentences ahead of a leg that has not opened yet, and no more.
    assert tts.sentences == split_sentences(TEXT)[:LOOKAHEAD]
    p, sink = leg(tts)
    before = datetime.now(UTC)
    await p.say(TEXT, cache.take(KEY, TEXT))
    assert any(p.next_frame())  # the very first frame pulled is speech
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert tts.sentences == split_sentences(TEXT)  # each sentence synthesised once
    assert (spoken.text, spoken.spoken_text, spoken.interrupted) == (TEXT, TEXT, False)
    assert spoken.first_audio_at is not None
    assert spoken.first_audio_at >= before
    await p.close("visitor_hangup")


async def test_sentences_still_being_synthesised_are_played_as_they_arrive() -> None:
    tts = GatedTTS()
    cache = FirstAudioCache(tts, RATE)
    cache.start(KEY, TEXT, later())
    await eventually(lambda: len(tts.sentences) == 1)
    p, sink = leg(tts)
    say = asyncio.ensure_future(p.say(TEXT, cache.take(KEY, TEXT)))
    await eventually(lambda: p.playback.active)  # queued after the first sentence
    assert any(p.next_frame())
    tts.gate.set()
    await say
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert spoken.text == TEXT
    assert not spoken.interrupted
    assert len(tts.sentences) == len(split_sentences(TEXT))  # each synthesised once
    await p.close("visitor_hangup")


async def test_audio_prepared_for_another_text_is_never_spoken() -> None:
    tts = GatedTTS()
    tts.gate.set()
    cache = FirstAudioCache(tts, RATE)
    entry = cache.start(KEY, TEXT, later())
    assert entry is not None
    await eventually(lambda: len(entry.sentences) == LOOKAHEAD)
    recomposed = "Thanks for switching to voice. Your order has shipped."
    assert cache.take(KEY, recomposed) is None  # the redeem recorded a different text
    p, sink = leg(tts)
    await p.say(recomposed, entry)  # even if handed over, the pipeline checks the text
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert spoken.text == recomposed
    assert tts.sentences[-2:] == split_sentences(recomposed)  # synthesised fresh
    await p.close("visitor_hangup")


async def test_another_replica_a_late_preparation_and_an_expired_one_give_nothing() -> None:
    tts = GatedTTS()
    tts.gate.set()
    replica_a, replica_b = FirstAudioCache(tts, RATE), FirstAudioCache(tts, RATE)
    replica_a.start(KEY, TEXT, later())
    assert replica_b.take(KEY, TEXT) is None  # the leg opened elsewhere: synthesise fresh
    assert replica_b.start(KEY, TEXT, later()) is None  # composed after its leg opened
    replica_a.start(("A", "h2"), TEXT, later(-1))
    assert replica_a.take(("A", "h2"), TEXT) is None
    await asyncio.sleep(0)


async def test_an_unredeemed_entry_is_dropped_at_its_expiry_with_nothing_else_happening() -> None:
    tts = GatedTTS()  # the gate stays shut: synthesis waits after the first sentence
    cache = FirstAudioCache(tts, RATE)
    entry = cache.start(KEY, TEXT, later(0.2))
    assert entry is not None
    kept = cache.start(("B", "h2"), TEXT, later())
    await eventually(lambda: len(entry.sentences) == 1)
    assert len(cache) == 2
    await eventually(lambda: entry.abandoned, within=2)  # no start, take or purge since
    assert len(cache) == 1
    assert kept is not None
    assert not kept.abandoned
    assert cache.take(("B", "h2"), TEXT) is kept
    assert not cache._timers  # a taken entry's expiry timer no longer holds its audio
    kept.abandon()
    tts.gate.set()  # the running sentences finish, then both syntheses stop
    await cache.aclose()


async def test_the_cache_is_bounded_and_a_dropped_entry_stops_synthesising() -> None:
    tts = GatedTTS()
    cache = FirstAudioCache(tts, RATE, max_entries=1)
    first = cache.start(("A", "h1"), TEXT, later())
    await eventually(lambda: len(tts.sentences) == 1)
    second = cache.start(("B", "h2"), "Hello there. How can I help?", later())
    assert first is not None
    assert second is not None
    assert first.abandoned
    assert len(cache) == 1
    tts.gate.set()
    await eventually(lambda: first.done and len(second.sentences) == 2)
    # The dropped entry finished the sentence it was on and no more.
    assert len(first.sentences) < len(split_sentences(TEXT))
    assert cache.take(("A", "h1"), TEXT) is None
    assert cache.take(("B", "h2"), "Hello there. How can I help?") is second


@pytest.mark.parametrize("enabled", [True, False])
async def test_accepting_a_handoff_prepares_the_audio_of_what_redeem_records(
    enabled: bool,
) -> None:
    ledger = open_ledger("memory://")
    january_claim_chat(ledger, "A")
    handoffs = HandoffService(ledger, signer=Signer(b"s" * 32, "handoff"))
    tts = GatedTTS()
    tts.gate.set()
    sessions = VoiceSessions(
        ledger,
        handoffs,
        settings=VoiceSettings(voice_presynthesis=enabled),
        stt=FakeSTT(),
        tts=tts,
    )
    ticket = handoffs.request_handoff("A")
    sessions.prepare("A", ticket.handoff_id)
    await asyncio.gather(*sessions._preparing)
    if not enabled:
        assert len(sessions.first_audio) == 0
        assert not tts.sentences
        return
    grant = handoffs.redeem(ticket.token, channel="webrtc")
    entry = sessions.first_audio.take(("A", ticket.handoff_id), grant.first_utterance)
    assert entry is not None
    assert entry.text == grant.first_utterance
    await eventually(lambda: len(entry.sentences) == LOOKAHEAD)
    assert [s for s, _ in entry.sentences] == split_sentences(entry.text)[:LOOKAHEAD]
    await sessions.close_all()
    ledger.close()


class CountingPiper(PiperTTS):
    """piper's caching around a fake renderer (no model needed)."""

    def __init__(self, phrase_cache: int, phrases: tuple[str, ...] = ()) -> None:
        super().__init__(phrase_cache=phrase_cache, phrases=phrases or system_phrases())
        self.rendered: list[tuple[str, int]] = []

    async def _render_at(self, text: str, sample_rate: int) -> bytes:
        self.rendered.append((text, sample_rate))
        return b"\x01\x00" * len(text)


async def test_piper_keeps_the_systems_fixed_phrases_per_rate_in_a_bounded_cache() -> None:
    tts = CountingPiper(phrase_cache=2)
    opening = "Thanks for switching to voice."
    long_one = "I can see your claim CLM-4821 for $2,340, which is pending review by our team."
    for _ in range(2):
        parts = [s async for s, _ in tts.synthesize_sentences(f"{opening} {long_one}", RATE)]
        assert parts == [opening, long_one]
    assert tts.rendered == [(opening, RATE), (long_one, RATE), (long_one, RATE)]
    await tts.synthesize(opening, 8_000)  # another rate is another entry
    await tts.synthesize("Could you say it again?", RATE)  # holds two: the least recent goes
    await tts.synthesize(opening, RATE)
    assert tts.rendered[-3:] == [
        (opening, 8_000),
        ("Could you say it again?", RATE),
        (opening, RATE),
    ]
    off = CountingPiper(phrase_cache=0)
    await off.synthesize(opening, RATE)
    await off.synthesize(opening, RATE)
    assert len(off.rendered) == 2


async def test_piper_never_caches_a_short_sentence_from_a_conversation() -> None:
    tts = CountingPiper(phrase_cache=32)
    personal = ["Hi Jane,", "Your claim CLM-4821 is approved.", "Order 7731 shipped."]
    for _ in range(2):
        for sentence in personal:
            await tts.synthesize(sentence, RATE)
    assert tts.rendered == [(s, RATE) for s in personal * 2]  # rendered each time, kept never
    assert not {text for text, _ in tts._phrases} & set(personal)
    for phrase in system_phrases():  # every fixed sentence, wherever it is cut, is kept
        for sentence in split_sentences(phrase):
            await tts.synthesize(sentence, RATE)
            before = len(tts.rendered)
            await tts.synthesize(sentence, RATE)
            assert len(tts.rendered) == before, sentence


def test_the_servers_piper_is_built_with_the_fixed_phrases_only() -> None:
    tts = make_tts(VoiceSettings(tts_provider="piper"), system_phrases())
    assert isinstance(tts, PiperTTS)
    assert {"Thanks for switching to voice.", "Could you say it again?"} <= tts.cacheable
    assert not any("CLM" in sentence for sentence in tts.cacheable)


async def test_a_pre_synthesis_failing_part_way_is_finished_live() -> None:
    first, *rest = split_sentences(TEXT)
    entry = PreparedAudio(TEXT, RATE, later())
    entry.add(first, b"\x01\x00" * 4_800)
    entry.finish(RuntimeError("piper died after the first sentence"))
    tts = GatedTTS()
    tts.gate.set()
    p, sink = leg(tts)
    await p.say(TEXT, entry)
    play_out(p)
    [spoken] = await sink.wait_for("AgentSpoke")
    assert (spoken.spoken_text, spoken.interrupted) == (TEXT, False)
    assert tts.sentences == rest  # only what the pre-synthesis did not reach, live
    assert any("presynthesis" in error for error in p.stats.errors)
    await p.close("visitor_hangup")
