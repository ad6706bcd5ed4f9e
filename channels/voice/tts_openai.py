"""Text-to-speech through any OpenAI-compatible `/audio/speech` endpoint (optional).

Requests `response_format="pcm"` (raw 24 kHz mono s16, no container to parse) and resamples
to the rate the transport wants.
"""

from __future__ import annotations

from threadline.channels.voice.errors import ProviderUnavailableError, TextToSpeechError

OPENAI_PCM_RATE = 24_000


class OpenAITTS:
    name = "openai"

    def __init__(
        self,
        *,
        base_url: str | None,
        api_key: str,
        model: str = "tts-1",
        voice: str = "alloy",
        timeout_s: float = 30,
    ) -> None:
        try:
            from openai import AsyncOpenAI
        except ImportError as exc:  # pragma: no cover - the openai extra is not installed
            raise ProviderUnavailableError("the openai package is not installed") from exc
        self.model = model
        self.voice = voice
        self._client = AsyncOpenAI(
            base_url=base_url, api_key=api_key, timeout=timeout_s, max_retries=1
        )

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        from openai import OpenAIError

        if not text.strip():
            return b""
        try:
            response = await self._client.audio.speech.create(
                model=self.model, voice=self.voice, input=text, response_format="pcm"
            )
            pcm = response.content
        except OpenAIError as exc:
            raise TextToSpeechError(f"openai speech failed: {type(exc).__name__}") from exc
        from threadline.channels.voice.audio_av import resample  # PyAV is loaded only when used

        pcm = pcm[: len(pcm) - len(pcm) % 2]
        return resample(pcm, OPENAI_PCM_RATE, sample_rate)

    async def close(self) -> None:
        await self._client.close()
