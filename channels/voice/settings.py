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

CsvList = Annotated[tuple[str, ...], NoDecode]


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class VoiceSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_"

    stt_provider: Literal["pocketsphinx", "openai"] = "pocketsphinx"
    tts_provider: Literal["espeak", "openai"] = "espeak"
    espeak_voice: str = "en-us"
    espeak_words_per_minute: int = Field(default=165, ge=80, le=400)

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
