"""A second speaker on a voice leg: the operator's microphone on a bridged call (issue 16).

Their audio goes through the same recognition as the visitor's — a VAD of the same kind and
settings, the leg's recogniser and vocabulary — and each utterance is recorded as
UtteranceTranscribed with role `operator` (the same fields: model, decode time, confidence,
the low-confidence flag), through the leg's one recorder so the two speakers' turns land on
the stream in the order they were heard. Truthful: only what the recogniser returned is
recorded, a doubtful decode is kept and flagged, silence records nothing. Nobody answers
these turns: the AI is off the call while a person is on it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from threadline.channels.voice.pipeline import INBOUND_RATE, transcribed
from threadline.channels.voice.ports import SAMPLE_WIDTH, SpeechEnded
from threadline.ledger.events import Role

if TYPE_CHECKING:
    from threadline.channels.voice.pipeline import VoicePipeline

log = logging.getLogger(__name__)


class SpeechListener:
    def __init__(self, pipeline: VoicePipeline, *, role: Role, actor: str) -> None:
        self.pipeline = pipeline
        self.role = role
        self.actor = actor
        self.vad = pipeline.new_vad()
        # The listener's VAD clock starts now; its turns are placed on the leg's clock.
        self.offset_ms = pipeline.inbound_ms
        self.utterances = 0
        self._heard_ms = 0
        self._queue: asyncio.Queue[tuple[SpeechEnded, float] | None] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._closed = False

    def push_audio(self, pcm: bytes) -> None:
        """Mono s16 at 16 kHz, any length."""
        if self._closed:
            return
        if self._worker is None:
            self._worker = asyncio.ensure_future(self._work())
        self._heard_ms += len(pcm) * 1000 // (INBOUND_RATE * SAMPLE_WIDTH)
        for event in self.vad.feed(pcm):
            if isinstance(event, SpeechEnded):
                lag_s = max(0, self._heard_ms - event.end_ms) / 1000
                self._queue.put_nowait((event, time.time() - lag_s))

    async def close(self) -> None:
        """Transcribes what is still pending (the operator's last words before hanging up),
        then returns once those turns are recorded. Idempotent."""
        if self._closed:
            return
        self._closed = True
        for event in self.vad.flush():
            if isinstance(event, SpeechEnded):
                self._queue.put_nowait((event, time.time()))
        if self._worker is not None:
            await self._queue.put(None)
            await self._worker
        await self.pipeline.settle()

    async def _work(self) -> None:
        while (item := await self._queue.get()) is not None:
            speech, ended_at = item
            p = self.pipeline
            try:
                transcript = await p.stt.transcribe(speech.pcm, INBOUND_RATE, p.vocabulary)
            except Exception as exc:
                p.report_error(f"stt ({self.role})", exc)
                continue
            if not transcript.text:
                continue
            self.utterances += 1
            p.record(
                transcribed(transcript, speech, ended_at, self.role, self.offset_ms), self.actor
            )
