"""Outbound speech as a queue of 20 ms frames, with what was actually played.

The transport pulls one frame per 20 ms (`next_frame`); an utterance being played knows how
many of its samples went out, which is what barge-in records as "actually spoken".
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from threadline.channels.voice.ports import SAMPLE_WIDTH

FRAME_MS = 20


@dataclass(slots=True)
class Utterance:
    text: str
    pcm: bytes
    played: int = 0  # bytes already handed to the transport
    seq: int = field(default=0)
    # Sentence-by-sentence synthesis: more audio is still coming; an underrun plays silence.
    pending: bool = False
    first_audio_at: float | None = None  # wall clock when its first frame went out

    @property
    def done(self) -> bool:
        return not self.pending and self.played >= len(self.pcm)

    # The text whose audio is in `pcm` (None: all of `text`); what "actually spoken" is
    # measured against when a streamed utterance is cut before it was fully synthesised.
    synthesized_text: str | None = None

    def extend(self, sentence: str, pcm: bytes) -> None:
        self.pcm += pcm
        done = self.synthesized_text
        self.synthesized_text = f"{done} {sentence}" if done else sentence

    @property
    def fraction_played(self) -> float:
        return 1.0 if not self.pcm else min(1.0, self.played / len(self.pcm))


def spoken_prefix(text: str, fraction: float) -> str:
    """The words of `text` that were fully played when `fraction` of its audio had gone out.

    Estimate: TTS speaks at a near-constant rate per character, so a word's end time is taken
    as its end offset in the text (spaces included) over the text's length. A word counts as
    spoken only if its estimated end was reached: "I see you were asking" cut at 50% gives
    "I see you" — never a word the visitor did not hear in full.
    """
    if fraction >= 1.0:
        return text
    words = text.split()
    total = len(" ".join(words))
    if total == 0 or fraction <= 0.0:
        return ""
    reached = fraction * total
    spoken: list[str] = []
    offset = 0
    for word in words:
        offset += len(word)
        if offset > reached:
            break
        spoken.append(word)
        offset += 1
    return " ".join(spoken)


class Playback:
    def __init__(self, sample_rate: int = 48_000) -> None:
        self.sample_rate = sample_rate
        self.frame_bytes = sample_rate * FRAME_MS // 1000 * SAMPLE_WIDTH
        self._silence = bytes(self.frame_bytes)
        self._queue: deque[Utterance] = deque()
        self._finished: list[Utterance] = []
        self.frames_out = 0
        self.speech_frames_out = 0

    @property
    def active(self) -> bool:
        return bool(self._queue)

    def enqueue(self, utterance: Utterance) -> None:
        self._queue.append(utterance)

    def next_frame(self) -> bytes:
        self.frames_out += 1
        if not self._queue:
            return self._silence
        current = self._queue[0]
        if current.played >= len(current.pcm) and current.pending:
            return self._silence  # the next sentence is still being synthesised
        if current.first_audio_at is None:
            current.first_audio_at = time.time()
        chunk = current.pcm[current.played : current.played + self.frame_bytes]
        current.played += len(chunk)
        if current.done:
            self._finished.append(self._queue.popleft())
        self.speech_frames_out += 1
        if len(chunk) < self.frame_bytes:
            chunk += self._silence[: self.frame_bytes - len(chunk)]
        return chunk

    def take_finished(self) -> list[Utterance]:
        finished, self._finished = self._finished, []
        return finished

    def stop(self) -> list[Utterance]:
        """Drops everything queued; returns the cut utterances (current one first)."""
        cut = list(self._queue)
        self._queue.clear()
        return cut
