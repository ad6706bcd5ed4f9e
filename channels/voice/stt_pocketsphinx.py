"""Offline speech-to-text with CMU pocketsphinx (the en-US model ships in the PyPI wheel).

Decoding is constrained to the conversation's `Vocabulary`, compiled to a JSGF grammar whose
alternatives are the vocabulary's phrases and words. With the general language model,
synthetic and accented speech is mostly mis-heard; with a context grammar it is exact. When
the grammar yields nothing (the visitor said something the context did not predict) the
utterance is decoded again with the general model rather than dropped.

Decoder options: lattice rescoring (`bestpath`) is off because it replaced correct grammar
paths with shorter wrong ones on espeak-ng speech. Without it pocketsphinx reports no
posterior, so `confidence` is a documented bucket, not a probability:
0.9 the hypothesis is one whole vocabulary phrase, 0.6 a partial grammar path, 0.3 the
general-model fallback, 0.0 nothing heard.

Dither: synthetic speech (and a muted browser) contains runs of exact digital zeros, whose
log-energy features derail the decoder (leading words vanish, short phrases win). Adding
±8 LSB of noise (about -72 dBFS, inaudible) before decoding took the contract phrases from
8/15 to 15/15 exact.

A decode is CPU-bound (~40 ms for a sentence) and the decoder is not thread-safe: it runs on
one dedicated worker thread, never on the event loop (a blocking decode stalls outgoing RTP).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from threadline.channels.voice.errors import ProviderUnavailableError, SpeechToTextError
from threadline.channels.voice.ports import Transcript, Vocabulary
from threadline.channels.voice.vad import rms_dbfs

log = logging.getLogger(__name__)

RATE = 16_000
_PAD_SAMPLES = RATE * 300 // 1000  # 300 ms of (dithered) silence either side
_DITHER_LSB = 8
_SPEECH_FLOOR_DBFS = -50.0  # no 20 ms frame louder than this: there is no speech to decode
_MAX_GRAMMARS = 32
PHRASE_MATCH, PARTIAL_MATCH, FALLBACK, NOTHING = 0.9, 0.6, 0.3, 0.0


class PocketsphinxSTT:
    name = "pocketsphinx"

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pocketsphinx")
        self._decoder: Any = None
        self._general = ""
        self._grammars: OrderedDict[str, frozenset[str]] = OrderedDict()

    async def transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None = None
    ) -> Transcript:
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._transcribe, pcm, sample_rate, vocabulary
            )
        except (ProviderUnavailableError, SpeechToTextError):
            raise
        except Exception as exc:  # the C extension raises RuntimeError/ValueError
            raise SpeechToTextError(f"pocketsphinx: {exc}") from exc

    async def warm_up(self) -> None:
        """Loads the model now instead of on the first utterance (~0.2 s)."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    # -- worker thread only below ------------------------------------------------------

    def _load(self) -> Any:
        if self._decoder is None:
            try:
                from pocketsphinx import Config, Decoder
            except ImportError as exc:  # pragma: no cover - the voice extra is not installed
                raise ProviderUnavailableError("pocketsphinx is not installed") from exc
            self._decoder = Decoder(Config(loglevel="FATAL", bestpath=False))
            self._general = self._decoder.current_search()
        return self._decoder

    def _transcribe(
        self, pcm: bytes, sample_rate: int, vocabulary: Vocabulary | None
    ) -> Transcript:
        from threadline.channels.voice.audio_av import resample  # PyAV is loaded only when used

        decoder = self._load()
        pcm16 = resample(pcm, sample_rate, RATE)
        if _loudest_frame_dbfs(pcm16) < _SPEECH_FLOOR_DBFS:
            return Transcript("", NOTHING)  # a closed grammar would "hear" a phrase in noise
        audio = _dithered(pcm16)
        grammar = self._grammar(decoder, vocabulary) if vocabulary else None
        if grammar is not None:
            name, phrases = grammar
            text = self._decode(decoder, name, audio)
            if text:
                return Transcript(text, PHRASE_MATCH if text in phrases else PARTIAL_MATCH)
        text = self._decode(decoder, self._general, audio)
        if not text:
            return Transcript("", NOTHING)
        return Transcript(text, FALLBACK if grammar is not None else PARTIAL_MATCH)

    @staticmethod
    def _decode(decoder: Any, search: str, audio: bytes) -> str:
        decoder.activate_search(search)
        decoder.start_utt()
        decoder.process_raw(audio, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return " ".join(str(hyp.hypstr).split()) if hyp is not None else ""

    def _grammar(self, decoder: Any, vocabulary: Vocabulary) -> tuple[str, frozenset[str]] | None:
        # Only whole phrases: a single-word alternative lets the decoder explain a sentence
        # as filler plus its last word. Out-of-dictionary words cannot be decoded; a phrase
        # containing one is left out.
        known = [
            phrase
            for phrase in dict.fromkeys(vocabulary.phrases)
            if phrase and all(decoder.lookup_word(word) is not None for word in phrase.split())
        ]
        if not known:
            return None
        key = "ctx_" + hashlib.sha256("\n".join(known).encode()).hexdigest()[:16]
        if key in self._grammars:
            self._grammars.move_to_end(key)
            return key, self._grammars[key]
        body = " | ".join(known)  # words are [a-z'] only (see vocabulary.normalize)
        decoder.add_jsgf_string(key, f"#JSGF V1.0;\ngrammar ctx;\npublic <utterance> = {body};\n")
        self._grammars[key] = frozenset(known)
        while len(self._grammars) > _MAX_GRAMMARS:
            old, _ = self._grammars.popitem(last=False)
            decoder.remove_search(old)
        return key, self._grammars[key]


def _dithered(pcm: bytes) -> bytes:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.int32)
    padded = np.concatenate(
        [np.zeros(_PAD_SAMPLES, np.int32), samples, np.zeros(_PAD_SAMPLES, np.int32)]
    )
    # Seeded so that the same audio always decodes to the same text.
    noise = np.random.default_rng(len(samples)).integers(
        -_DITHER_LSB, _DITHER_LSB + 1, padded.size, dtype=np.int32
    )
    return np.clip(padded + noise, -32768, 32767).astype("<i2").tobytes()


def _loudest_frame_dbfs(pcm: bytes) -> float:
    step = RATE // 50 * 2
    return max((rms_dbfs(pcm[i : i + step]) for i in range(0, len(pcm), step)), default=-120.0)
