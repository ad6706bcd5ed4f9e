"""Voice leg settings: one section of the root `Settings` (`threadline.app.settings`), read from
`THREADLINE_*` variables there and passed down.

`THREADLINE_ICE_HOST_ADDRESSES` (comma-separated) is the list of local addresses aiortc gathers
host candidates on. aioice normally enumerates every interface *except* 127.0.0.1, so a
loopback-only deployment (tests, a single-host demo) must set it to `127.0.0.1`. Empty means
"aioice's own enumeration". `THREADLINE_ICE_SERVERS` (comma-separated `stun:`/`turn:` URLs) is
empty by default: aiortc would otherwise contact a public STUN server.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from pydantic_settings import NoDecode

from threadline.channels.voice.tts_espeak import (
    DEFAULT_VOICE,
    DEFAULT_WORD_GAP,
    DEFAULT_WORDS_PER_MINUTE,
)

CsvList = Annotated[tuple[str, ...], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"

    # Offline defaults ship in PyPI packages (docs/voice.md). The closed-grammar pocketsphinx
    # recogniser is no longer selectable: it substituted chat phrases for what was said.
    stt_provider: Literal["whisper", "openai"] = "whisper"
    tts_provider: Literal["piper", "espeak", "openai"] = "piper"
    # A local CTranslate2 Whisper folder; None = the packaged tiny.en. Never a hub name.
    whisper_model: str | None = None
    whisper_compute_type: str = "int8"
    whisper_cpu_threads: int = Field(default=2, ge=1, le=64)
    whisper_beam_size: int = Field(default=1, ge=1, le=10)
    # The beam on phone (PSTN, 8 kHz source) legs only: it recovers words of band-limited
    # speech that greedy decoding loses, but costs words of clean 16 kHz speech (docs/voice.md).
    whisper_phone_beam_size: int = Field(default=5, ge=1, le=10)
    # Below this average log-probability (or above this no-speech probability) a
    # transcription is flagged low-confidence and the visitor is asked to repeat.
    stt_low_logprob: float = Field(default=-1.0, le=0.0)
    stt_high_no_speech: float = Field(default=0.6, ge=0.0, le=1.0)
    # Load the local speech models when `threadline serve` starts (off: on the first call).
    voice_preload: bool = True
    # Compose and synthesise the first utterance when the visitor accepts the handoff, not
    # when the leg's request arrives (used only if the conversation has not moved since).
    voice_presynthesis: bool = True
    # Voice activity: Silero (ONNX, the model faster-whisper ships) or the RMS-level detector.
    voice_vad: Literal["silero", "energy"] = "silero"
    # Silence that ends a visitor turn. Every millisecond here is added to the turn latency;
    # 400 ms still bridges the pauses between clauses that Silero scores as non-speech.
    voice_end_silence_ms: int = Field(default=400, ge=100, le=3000)
    # A local piper voice (.onnx with its .onnx.json); None = the packaged en_US joe medium.
    piper_voice: str | None = None
    piper_length_scale: float | None = Field(default=None, gt=0.2, lt=5.0)
    # Entries of piper's cache of the system's own fixed sentences (a leg's opening, the
    # repeat prompt), per output rate; never a sentence from a conversation. 0 = off.
    piper_phrase_cache: int = Field(default=32, ge=0, le=1024)
    # The fallback voice (tts_provider=espeak): an espeak-ng voice, `+variant` allowed.
    espeak_voice: str = DEFAULT_VOICE
    # Defaults chosen for the recogniser on a tuning sentence set (docs/voice.md).
    espeak_words_per_minute: int = Field(default=DEFAULT_WORDS_PER_MINUTE, ge=80, le=400)
    # Pause between words, in units of 10 ms (espeak-ng -g).
    espeak_word_gap: int = Field(default=DEFAULT_WORD_GAP, ge=0, le=100)

    # OpenAI-compatible endpoint (any base_url); the key is never logged.
    openai_base_url: str | None = None
    openai_api_key: SecretStr | None = None
    openai_stt_model: str = "whisper-1"
    openai_tts_model: str = "tts-1"
    openai_tts_voice: str = "alloy"

    ice_servers: CsvList = ()
    ice_turn_username: str | None = None
    ice_turn_password: SecretStr | None = None
    ice_host_addresses: CsvList = ()

    # A peer that sends no audio for this long is gone (recv() would wait forever).
    voice_peer_timeout_s: float = Field(default=5.0, gt=0)
    voice_max_legs: int = Field(default=50, ge=1)

    _split = field_validator("ice_servers", "ice_host_addresses", mode="before")(_split_csv)
