"""Small interfaces the voice pipeline is written against.

Audio everywhere in this package is mono, signed 16-bit little-endian PCM (`bytes`) at an
explicit sample rate. Providers implement `SpeechToText` / `TextToSpeech` in one leaf file
each; the agent is reached only through `TurnHandler`; the ledger only through `EventSink`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from threadline.ledger.envelope import NewEvent

SAMPLE_WIDTH = 2  # bytes per s16 sample


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """What the visitor is likely to say in this conversation, built from the agent context.

    `phrases` are whole normalised sentences (lowercase words, numbers spelled out);
    `words` are single words worth recognising on their own (entities, names). Recognisers
    use them as a prompt/bias only: never to constrain what can be heard.
    """

    phrases: tuple[str, ...] = ()
    words: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.phrases or self.words)


@dataclass(frozen=True, slots=True)
class Transcript:
    text: str  # "" when nothing intelligible was heard
    confidence: float  # 0..1; how each provider derives it is documented in its file
    model: str | None = None  # the recogniser's model id, for the record
    duration_ms: int | None = None  # audio decoded
    avg_logprob: float | None = None
    no_speech_prob: float | None = None
    # The provider doubts it: recorded as heard, and the visitor is asked to repeat.
    low_confidence: bool = False


@runtime_checkable
class SpeechToText(Protocol):
    name: str

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        """Decodes one utterance. Must not block the event loop. Raises SpeechToTextError."""
        ...


@runtime_checkable
class TextToSpeech(Protocol):
    name: str

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        """Mono s16 PCM at `sample_rate`. Must not block the event loop. Raises
        TextToSpeechError."""
        ...


@dataclass(frozen=True, slots=True)
class SpeechStarted:
    start_ms: int  # on the leg's inbound media clock (samples received, not wall time)


@dataclass(frozen=True, slots=True)
class SpeechEnded:
    pcm: bytes
    start_ms: int
    end_ms: int


VadEvent = SpeechStarted | SpeechEnded


class VoiceActivityDetector(Protocol):
    sample_rate: int

    def feed(self, pcm: bytes) -> list[VadEvent]:
        """Consumes inbound audio of any length; returns the boundaries it completed."""
        ...

    def flush(self) -> list[VadEvent]:
        """Ends a pending utterance (the peer went away mid-sentence)."""
        ...


@dataclass(frozen=True, slots=True)
class VisitorTurn:
    text: str
    confidence: float
    start_ms: int
    end_ms: int


# The agent (in `handoff/`): visitor text in, reply text out (None = say nothing).
TurnHandler = Callable[[VisitorTurn], Awaitable[str | None]]

# Records an event on the leg's conversation (bound by the caller to a conversation id).
EventSink = Callable[[NewEvent], Awaitable[None]]
