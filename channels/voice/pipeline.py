"""The turn pipeline of one voice leg, independent of the transport.

inbound PCM → VAD → STT (with the conversation's vocabulary) → `TurnHandler` (the agent) →
TTS → `Playback` → the transport pulls 20 ms frames. Every visitor turn is recorded as
UtteranceTranscribed and every agent turn as AgentSpoke, through the `EventSink`.

Barge-in: while the agent is talking, visitor speech lasting `barge_in_ms` stops playback;
the cut turn is recorded with interrupted=true and the words actually played (see
`playback.spoken_prefix`). Replies still queued or being synthesised are recorded the same
way with nothing spoken.

Early recognition: when the visitor's speech has paused for `speculate_ms` (120 ms), the
utterance so far is sent to the recogniser while the VAD still waits out `end_silence_ms`.
If the pause turns out to be the end (no voiced frame since the snapshot), that transcription is the
turn's — the snapshot holds every voiced frame, only trailing silence differs — so decoding
overlaps the end-of-speech wait instead of following it. If the visitor speaks on, the
early result is dropped (cancelled if its decode has not started) and the whole utterance
is decoded as before.

Errors in the media loop are data: a failed decode, agent call, synthesis or append is
logged and counted in `stats`, and the leg carries on. Events are appended by one recorder
task, in the order they happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from threadline.channels.voice.playback import FRAME_MS, Playback, Utterance, spoken_prefix
from threadline.channels.voice.ports import (
    SAMPLE_WIDTH,
    EventSink,
    SpeechEnded,
    SpeechStarted,
    SpeechToText,
    TextToSpeech,
    Transcript,
    TurnHandler,
    VisitorTurn,
    Vocabulary,
    VoiceActivityDetector,
)
from threadline.channels.voice.vad import EnergyVad
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    AgentSpoke,
    EventData,
    LegClosed,
    Role,
    UtteranceTranscribed,
)

if TYPE_CHECKING:
    from threadline.channels.voice.presynth import PreparedAudio

log = logging.getLogger(__name__)

INBOUND_RATE = 16_000
OUTPUT_RATE = 48_000  # what the WebRTC track sends (Opus at 48 kHz)
_CLOSE_GRACE_S = 5.0
AGENT_ACTOR = "agent"
SPECULATE_MS = 120  # the pause after which the utterance so far is decoded early
VISITOR_ACTOR = "visitor"


@dataclass(slots=True)
class PipelineStats:
    utterances: int = 0
    agent_turns: int = 0
    barge_ins: int = 0
    low_confidence: int = 0
    errors: list[str] = field(default_factory=list)
    first_audio_at: float | None = None  # wall clock of the first agent speech frame


REPEAT_PROMPT = "Sorry, I didn't catch that. Could you say it again?"


class VoicePipeline:
    def __init__(
        self,
        *,
        leg_id: str,
        stt: SpeechToText,
        tts: TextToSpeech,
        on_turn: TurnHandler,
        record: EventSink,
        vocabulary: Vocabulary | None = None,
        vad: VoiceActivityDetector | None = None,
        new_vad: Callable[[], VoiceActivityDetector] | None = None,
        output_rate: int = OUTPUT_RATE,
        barge_in_ms: int = 200,
        speculate_ms: int = SPECULATE_MS,
        repeat_prompt: str = REPEAT_PROMPT,
        may_speak: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self.repeat_prompt = repeat_prompt
        # Asked before the AI speaks unprompted by the agent (the repeat prompt): the agent
        # is silent while a person holds the conversation, and so must this be.
        self.may_speak = may_speak
        self.leg_id = leg_id
        self.stt = stt
        self.tts = tts
        self.on_turn = on_turn
        self.vocabulary = vocabulary
        self.vad = vad or EnergyVad(INBOUND_RATE)
        # Another speaker on this leg (an operator, channels/voice/listener.py) gets a VAD of
        # the same kind and settings as the visitor's.
        self.new_vad = new_vad or (lambda: EnergyVad(INBOUND_RATE, getattr(vad, "config", None)))
        self.playback = Playback(output_rate)
        self.barge_in_ms = barge_in_ms
        self.speculate_ms = speculate_ms
        self._early: tuple[tuple[int, int], asyncio.Future[Transcript]] | None = None
        self.stats = PipelineStats()
        self.closed_reason: str | None = None
        self._sink = record
        self._inbound_ms = 0
        self._speech_started_ms: int | None = None
        self._generation = 0  # bumped by every barge-in; stale syntheses are not played
        self._takeovers = 0  # bumped by `stop_speaking`; a reply composed across one is dropped
        # A person holds the call (channels/voice/bridge.py): they hear the visitor themselves,
        # so the AI does not ask to repeat a doubtful utterance either.
        self.held = False
        self._turns: asyncio.Queue[_Turn | None] = asyncio.Queue()
        self._events: asyncio.Queue[NewEvent | asyncio.Future[None] | None] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._recorder: asyncio.Task[None] | None = None

    # -- life cycle ----------------------------------------------------------------------

    def start(self) -> None:
        if self._worker is None:
            self._worker = asyncio.create_task(self._turn_worker(), name=f"turns-{self.leg_id}")
            self._recorder = asyncio.create_task(self._record_worker(), name=f"rec-{self.leg_id}")

    async def close(self, reason: str) -> None:
        """Ends the leg: the pending utterance is still transcribed (nothing is lost), the
        agent's cut speech is recorded, then LegClosed. Idempotent."""
        if self.closed_reason is not None:
            return
        self.closed_reason = reason
        self.start()
        for event in self.vad.flush():
            if isinstance(event, SpeechEnded):
                await self._turns.put((event, time.time(), self._take_early()))
        await self._turns.put(None)
        if self._worker is not None:
            await self._worker
        # Replies being synthesised finish (and are recorded as not spoken) rather than being
        # cancelled: cancelling a TTS subprocess mid-read leaks its pipes.
        if self._tasks:
            _, late = await asyncio.wait(set(self._tasks), timeout=_CLOSE_GRACE_S)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        self._collect_finished()
        self._record_cut(self.playback.stop())
        self._emit(LegClosed(reason=reason[:200]), actor=None)
        await self._events.put(None)
        if self._recorder is not None:
            await self._recorder

    # -- outbound ------------------------------------------------------------------------

    async def say(self, text: str, prepared: PreparedAudio | None = None) -> None:
        """Synthesises `text` and queues it for playback (returns once it is queued).
        `prepared`: its audio, already being synthesised (the first utterance, from the
        handoff's acceptance), used only if it is of this very text at this rate."""
        text = text.strip()
        usable = (
            prepared is not None
            and prepared.text.strip() == text
            and prepared.sample_rate == self.playback.sample_rate
        )
        if prepared is not None and (not usable or not text or self.closed_reason is not None):
            prepared.abandon()  # not played: its synthesis stops
        if not text or self.closed_reason is not None:
            return
        generation = self._generation
        if usable and prepared is not None:
            await self._say_streaming(
                text, lambda _text, rate: self._prepared_then_live(prepared, rate), generation
            )
            return
        stream = getattr(self.tts, "synthesize_sentences", None)
        if stream is not None:
            await self._say_streaming(text, stream, generation)
            return
        try:
            pcm = await self.tts.synthesize(text, self.playback.sample_rate)
        except Exception as exc:
            self.report_error("tts", exc)
            return
        if generation != self._generation or self.closed_reason is not None:
            self._record_cut([Utterance(text, pcm)])  # the visitor barged in meanwhile
            return
        self.playback.enqueue(Utterance(text, pcm))

    async def _say_streaming(self, text: str, stream: Any, generation: int) -> None:
        """Plays the first sentence as soon as it is synthesised; the rest follow."""
        utterance = Utterance(text, b"", pending=True)
        queued = False
        try:
            # Closed on a barge-in or hang-up, so the synthesis behind it stops too.
            async with contextlib.aclosing(stream(text, self.playback.sample_rate)) as parts:
                async for sentence, pcm in parts:
                    if generation != self._generation or self.closed_reason is not None:
                        break
                    utterance.extend(sentence, pcm)
                    if not queued:
                        self.playback.enqueue(utterance)
                        queued = True
        except Exception as exc:
            self.report_error("tts", exc)
        utterance.pending = False
        if not queued:
            self._record_cut([utterance])  # barged in (or failed) before any audio

    async def _prepared_then_live(
        self, prepared: PreparedAudio, sample_rate: int
    ) -> AsyncIterator[tuple[str, bytes]]:
        """The prepared sentences; if their synthesis failed part-way, the sentences it did
        not reach are synthesised here, live, so the visitor still hears the whole text."""
        played: list[str] = []
        try:
            async with contextlib.aclosing(prepared.stream()) as parts:
                async for sentence, pcm in parts:
                    played.append(sentence)
                    yield sentence, pcm
            return
        except Exception as exc:
            self.report_error("presynthesis", exc)
        rest = _after_words(prepared.text, " ".join(played))
        if not rest:
            return  # nothing left, or the played part is not a prefix: recorded as cut
        live = getattr(self.tts, "synthesize_sentences", None)
        if live is None:
            yield rest, await self.tts.synthesize(rest, sample_rate)
            return
        async with contextlib.aclosing(live(rest, sample_rate)) as parts:
            async for item in parts:
                yield item

    async def ask_to_repeat(self) -> None:
        if self.may_speak is not None:
            try:
                if not await self.may_speak():
                    return
            except Exception as exc:  # unknown: a prompt nobody may want is not worth it
                self.report_error("may_speak", exc)
                return
        await self.say(self.repeat_prompt)

    def next_frame(self) -> bytes:
        """One 20 ms frame of mono s16 at `playback.sample_rate`; called by the transport."""
        frame = self.playback.next_frame()
        if self.stats.first_audio_at is None and self.playback.speech_frames_out:
            self.stats.first_audio_at = time.time()
        self._collect_finished()
        return frame

    # -- inbound -------------------------------------------------------------------------

    def push_audio(self, pcm: bytes) -> None:
        """Mono s16 at 16 kHz from the transport, any length."""
        if self.closed_reason is not None:
            return
        self._inbound_ms += len(pcm) * 1000 // (INBOUND_RATE * SAMPLE_WIDTH)
        for event in self.vad.feed(pcm):
            if isinstance(event, SpeechStarted):
                self._speech_started_ms = event.start_ms
                self._drop_early()
            else:
                self._speech_started_ms = None
                # The VAD decides after a stretch of silence: the speech itself ended earlier.
                lag_s = max(0, self._inbound_ms - event.end_ms) / 1000
                self._turns.put_nowait((event, time.time() - lag_s, self._take_early()))
        self._speculate()
        started = self._speech_started_ms
        if started is not None and self._inbound_ms - started >= self.barge_in_ms:
            self._speech_started_ms = None
            self._barge_in()

    @property
    def inbound_ms(self) -> int:
        """The leg's media clock: milliseconds of visitor audio received so far."""
        return self._inbound_ms

    def record(self, data: EventData, actor: str | None) -> None:
        """Appends `data` on this leg through the pipeline's one recorder, in order with the
        visitor's and the AI's turns (another speaker's words, channels/voice/listener.py)."""
        self._emit(data, actor)

    async def settle(self) -> None:
        """Returns once every event queued so far has been handed to the sink."""
        if self._recorder is None or self._recorder.done():
            return
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._events.put_nowait(done)
        await done

    def stop_speaking(self) -> None:
        """A person takes the call: cuts what the AI is saying and drops what it was about to
        say (a reply still being synthesised or composed); what is cut or dropped is recorded
        as interrupted. `settle()` after this returns once the cut is recorded."""
        # Bumped even when nothing plays: a synthesis or an agent turn in flight is the AI's
        # next utterance, and it would otherwise reach the visitor after the person joined.
        self._generation += 1
        self._takeovers += 1
        self._collect_finished()
        if self.playback.active:
            self._record_cut(self.playback.stop())

    def _speculate(self) -> None:
        snapshot = getattr(self.vad, "speculate", None)
        if snapshot is None or self.speculate_ms <= 0:
            return
        taken = snapshot(self.speculate_ms)
        if taken is None:
            return
        key, pcm = taken
        self._drop_early()  # the visitor spoke on: a decode still queued is not started
        early = asyncio.ensure_future(self.stt.transcribe(pcm, INBOUND_RATE, self.vocabulary))
        early.add_done_callback(_consume)  # a dropped early result must not warn
        self._early = (key, early)

    def _take_early(self) -> asyncio.Future[Transcript] | None:
        """The early transcription when it covers the utterance that just ended."""
        early, self._early = self._early, None
        if early is not None and early[0] == getattr(self.vad, "ended_key", None):
            return early[1]
        if early is not None:
            early[1].cancel()
        return None

    def _drop_early(self) -> None:
        if self._early is not None:
            self._early[1].cancel()
            self._early = None

    def _barge_in(self) -> None:
        if not self.playback.active:
            return
        self._collect_finished()
        self._generation += 1
        self.stats.barge_ins += 1
        self._record_cut(self.playback.stop())

    # -- workers -------------------------------------------------------------------------

    async def _turn_worker(self) -> None:
        while (item := await self._turns.get()) is not None:
            await self._handle_utterance(*item)

    async def _handle_utterance(
        self, speech: SpeechEnded, ended_at: float, early: asyncio.Future[Transcript] | None
    ) -> None:
        try:
            if early is not None:
                transcript = await early
            else:
                transcript = await self.stt.transcribe(speech.pcm, INBOUND_RATE, self.vocabulary)
        except Exception as exc:
            self.report_error("stt", exc)
            return
        if not transcript.text:
            return
        self.stats.utterances += 1
        heard = transcribed(transcript, speech, ended_at, "visitor")
        confidence = heard.confidence
        self._emit(heard, actor=VISITOR_ACTOR)
        if self.closed_reason is not None:
            return  # transcribed for the record; nobody is listening to a reply
        if transcript.low_confidence:
            # Recorded as heard and flagged; the agent does not act on words it doubts.
            self.stats.low_confidence += 1
            if not self.held:
                self._spawn(self.ask_to_repeat())
            return
        turn = VisitorTurn(transcript.text, confidence, speech.start_ms, speech.end_ms)
        takeovers = self._takeovers
        try:
            reply = await self.on_turn(turn)
        except Exception as exc:
            self.report_error("agent", exc)
            return
        if reply and takeovers != self._takeovers:
            self._record_cut([Utterance(reply, b"")])  # a person took the call meanwhile
            return
        if reply:
            self._spawn(self.say(reply))

    def _spawn(self, job: Any) -> None:
        # Synthesis runs beside the worker so a barge-in during it is noticed.
        task = asyncio.create_task(job)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record_worker(self) -> None:
        while (event := await self._events.get()) is not None:
            if isinstance(event, asyncio.Future):
                if not event.done():
                    event.set_result(None)  # a `settle` barrier: all before it are recorded
                continue
            try:
                await self._sink(event)
            except Exception as exc:
                self.report_error(f"record {event.type}", exc)

    # -- recording -----------------------------------------------------------------------

    def _collect_finished(self) -> None:
        for utterance in self.playback.take_finished():
            self.stats.agent_turns += 1
            # Played to its end, but only what was synthesised: a synthesis that failed after
            # the first sentence played that sentence, not the reply (recorded as cut short).
            done = utterance.synthesized_text
            spoken = done if done is not None else utterance.text
            self._emit(
                AgentSpoke(
                    text=utterance.text,
                    interrupted=spoken.split() != utterance.text.split(),
                    spoken_text=spoken,
                    first_audio_at=_wall(utterance.first_audio_at),
                ),
                AGENT_ACTOR,
            )

    def _record_cut(self, cut: list[Utterance]) -> None:
        for utterance in cut:
            self.stats.agent_turns += 1
            basis = utterance.synthesized_text or utterance.text
            spoken = spoken_prefix(basis, utterance.fraction_played) if utterance.pcm else ""
            self._emit(
                AgentSpoke(
                    text=utterance.text,
                    interrupted=True,
                    spoken_text=spoken,
                    first_audio_at=_wall(utterance.first_audio_at),
                ),
                AGENT_ACTOR,
            )

    def _emit(self, data: EventData, actor: str | None) -> None:
        event = NewEvent(
            type=type(data).__name__,
            data=data,
            leg_id=self.leg_id,
            actor=actor,
            occurred_at=datetime.now(UTC),
        )
        self._events.put_nowait(event)

    def report_error(self, stage: str, exc: BaseException) -> None:
        message = f"{stage}: {type(exc).__name__}: {exc}"[:300]
        self.stats.errors.append(message)
        log.warning("voice leg %s: %s", self.leg_id, message)


_Turn = tuple[SpeechEnded, float, "asyncio.Future[Transcript] | None"]


def transcribed(
    transcript: Transcript, speech: SpeechEnded, ended_at: float, role: Role, offset_ms: int = 0
) -> UtteranceTranscribed:
    """What the recogniser heard, as recorded: its words, model, decode time and confidence
    (the same fields whoever spoke). `offset_ms` moves a second speaker's VAD clock onto the
    leg's (the operator's track starts when they join)."""
    logprob = transcript.avg_logprob
    return UtteranceTranscribed(
        role=role,
        text=transcript.text[:8000],
        start_ms=speech.start_ms + offset_ms,
        end_ms=max(speech.end_ms, speech.start_ms) + offset_ms,
        confidence=min(1.0, max(0.0, transcript.confidence)),
        model=transcript.model,
        duration_ms=transcript.duration_ms,
        avg_logprob=min(0.0, logprob) if logprob is not None else None,
        no_speech_prob=transcript.no_speech_prob,
        low_confidence=transcript.low_confidence,
        ended_at=_wall(ended_at),
    )


def _after_words(text: str, prefix: str) -> str:
    """`text` without its leading words `prefix` ("" if they are not its prefix)."""
    words, head = text.split(), prefix.split()
    return " ".join(words[len(head) :]) if words[: len(head)] == head else ""


def _consume(future: asyncio.Future[Transcript]) -> None:
    if not future.cancelled():
        future.exception()


def _wall(at: float | None) -> datetime | None:
    return datetime.fromtimestamp(at, UTC) if at is not None else None


FRAME_BYTES_16K = INBOUND_RATE * FRAME_MS // 1000 * SAMPLE_WIDTH
