"""A person takes the call (`VoicePipeline.stop_speaking`, what `CallBridge.join` calls): not
only what the AI is playing is cut, but nothing it was about to say reaches the visitor — a
reply still being synthesised, or still being composed by the agent — and `settle` returns
once the cut is recorded, so the join's own event follows it on the stream. While a person
holds the call or the conversation, the AI does not even ask to repeat a doubtful utterance."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.voice import RecordingSink, eventually
from tests.unit.handoff.handoff_helpers import add, start_chat
from tests.unit.voice.test_voice_pipeline import FakeSTT, FakeTTS, quiet, tone
from threadline.channels.voice.pipeline import REPEAT_PROMPT, VoicePipeline
from threadline.channels.voice.ports import Transcript, VisitorTurn, Vocabulary
from threadline.channels.voice.sessions import ai_may_speak
from threadline.ledger.events import OperatorJoined
from threadline.ledger.store import open_ledger

pytestmark = pytest.mark.anyio


class HeldTTS(FakeTTS):
    """Synthesis that finishes only when the test opens `gate`."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.started = asyncio.Event()

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        self.started.set()
        await self.gate.wait()
        return await super().synthesize(text, sample_rate)


def leg(
    tts: FakeTTS,
    reply: asyncio.Future[str] | None = None,
    stt: FakeSTT | None = None,
    **kwargs: Any,
) -> tuple[VoicePipeline, RecordingSink]:
    sink = RecordingSink()

    async def on_turn(turn: VisitorTurn) -> str | None:
        return await reply if reply is not None else None

    p = VoicePipeline(
        leg_id="L", stt=stt or FakeSTT(), tts=tts, on_turn=on_turn, record=sink, **kwargs
    )
    p.start()
    return p, sink


async def test_a_reply_still_being_synthesised_is_not_played_after_the_takeover() -> None:
    tts = HeldTTS()
    p, sink = leg(tts)
    saying = asyncio.ensure_future(p.say("Your claim was paid on the third."))
    await tts.started.wait()
    p.stop_speaking()
    tts.gate.set()
    await saying
    assert not p.playback.active  # nothing queued for the visitor
    [spoken] = await sink.wait_for("AgentSpoke")
    assert (spoken.interrupted, spoken.spoken_text, spoken.first_audio_at) == (True, "", None)
    await p.close("done")


async def test_a_reply_the_agent_is_still_composing_is_not_spoken_after_the_takeover() -> None:
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    p, sink = leg(FakeTTS(), reply)
    p.push_audio(quiet(400) + tone(600) + quiet(700))
    await sink.wait_for("UtteranceTranscribed")  # the turn is with the agent now
    p.stop_speaking()
    reply.set_result("Your claim was paid on the third.")
    [spoken] = await sink.wait_for("AgentSpoke")
    assert (spoken.interrupted, spoken.spoken_text, spoken.first_audio_at) == (True, "", None)
    assert not p.playback.active
    await p.close("done")


async def test_settle_after_the_takeover_has_the_cut_recorded() -> None:
    p, sink = leg(FakeTTS())
    await p.say("one two three four five six seven eight nine ten")
    for _ in range(12):
        p.next_frame()
    p.stop_speaking()
    await p.settle()  # no waiting on the recorder task: it is in the sink already
    [cut] = sink.of_type("AgentSpoke")
    assert cut.interrupted is True
    assert cut.first_audio_at is not None
    await p.close("done")


async def test_the_ai_speaks_again_after_the_takeover_ends() -> None:
    reply: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    reply.set_result("Welcome back.")
    p, sink = leg(FakeTTS(), reply)
    p.stop_speaking()  # a person took the call and left again (nothing was playing)
    p.push_audio(quiet(400) + tone(600) + quiet(700))
    await eventually(lambda: p.playback.active)
    await p.close("done")
    [spoken] = sink.of_type("AgentSpoke")
    assert spoken.text == "Welcome back."


class DoubtfulSTT(FakeSTT):
    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        return Transcript("mm the sudanese", 0.3, low_confidence=True)


async def test_a_doubtful_utterance_gets_no_repeat_prompt_while_a_person_holds_the_call() -> None:
    """The person hears the visitor themselves; a prompt queued now would play after the
    hand-back, about words said long before."""
    p, sink = leg(FakeTTS(), stt=DoubtfulSTT())
    p.held = True
    p.push_audio(quiet(400) + tone(600) + quiet(700))
    [heard] = await sink.wait_for("UtteranceTranscribed")
    assert heard.low_confidence  # recorded as heard, flagged
    await p.settle()
    await asyncio.sleep(0.05)  # a spawned prompt would be queued by now
    assert not p.playback.active
    p.held = False  # handed back: the AI asks again
    p.push_audio(tone(600) + quiet(700))
    await eventually(lambda: p.playback.active)
    await p.close("done")


async def test_no_repeat_prompt_while_a_person_holds_the_conversation() -> None:
    ledger = open_ledger("memory://")
    start_chat(ledger, "A")
    may_speak = ai_may_speak(ledger, "A")
    assert await may_speak()
    p, sink = leg(FakeTTS(), stt=DoubtfulSTT(), may_speak=may_speak)
    # Joined from the console (the chat takeover): the agent answers nothing on the call.
    add(ledger, "A", OperatorJoined(operator="alice", joined_at=datetime.now(UTC)), None)
    assert not await may_speak()
    await p.ask_to_repeat()
    assert not p.playback.active
    p.may_speak = None  # nobody to ask: the AI asks the visitor to say it again
    await p.ask_to_repeat()
    assert p.playback.active
    await p.close("done")
    assert [s.text for s in sink.of_type("AgentSpoke")] == [REPEAT_PROMPT]
    ledger.close()
