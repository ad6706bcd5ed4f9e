"""Speech-to-text through any OpenAI-compatible `/audio/transcriptions` endpoint (optional).

The vocabulary is sent as the `prompt` (Whisper-style biasing towards the conversation's
words). Confidence: with `verbose_json` segments, exp(mean avg_logprob) over segments;
servers that return only text get 0.5 ("unknown"), never a made-up certainty.
"""

from __future__ import annotations

import io
import math
import wave
from typing import Any

from threadline.channels.voice.errors import ProviderUnavailableError, SpeechToTextError
from threadline.channels.voice.ports import Transcript, Vocabulary

UNKNOWN_CONFIDENCE = 0.5
_MAX_PROMPT_CHARS = 800


class OpenAISTT:
    name = "openai"

    def __init__(
        self, *, base_url: str | None, api_key: str, model: str = "whisper-1", timeout_s: float = 30
    ) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:  # pragma: no cover - the openai extra is not installed
            raise ProviderUnavailableError("the openai package is not installed") from exc
        self.model = model
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=1
        )

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        from openai import OpenAIError

        prompt = ", ".join(vocabulary.phrases)[:_MAX_PROMPT_CHARS] if vocabulary else None
        extra: dict[str, Any] = {"prompt": prompt} if prompt else {}
        try:
            result = await self._client.audio.transcriptions.create(
                model=self.model,
                file=("utterance.wav", _wav(pcm, sample_rate), "audio/wav"),
                response_format="verbose_json",
                **extra,
            )
        except OpenAIError as exc:
            raise SpeechToTextError(f"openai transcription failed: {type(exc).__name__}") from exc
        text = " ".join(str(getattr(result, "text", "") or "").split())
        duration_ms = len(pcm) // 2 * 1000 // sample_rate
        if not text:
            return Transcript("", 0.0, self.model, duration_ms)
        logprob = _avg_logprob(getattr(result, "segments", None))
        return Transcript(
            text,
            min(1.0, math.exp(logprob)) if logprob is not None else UNKNOWN_CONFIDENCE,
            model=self.model,
            duration_ms=duration_ms,
            avg_logprob=min(0.0, logprob) if logprob is not None else None,
            # A server that reports log-probabilities gets the same doubt rule as whisper.
            low_confidence=logprob is not None and logprob < -1.0,
        )

    async def close(self) -> None:
        await self._client.close()


def _avg_logprob(segments: Any) -> float | None:
    logprobs: list[float] = []
    for segment in segments or []:
        value = segment.get("avg_logprob") if isinstance(segment, dict) else None
        value = getattr(segment, "avg_logprob", value)
        if value is not None:
            logprobs.append(float(value))
    return sum(logprobs) / len(logprobs) if logprobs else None


def _wav(pcm: bytes, sample_rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(sample_rate)
        wav.writeframes(pcm)
    return buffer.getvalue()
