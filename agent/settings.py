"""The language-model section of the root `Settings` (`threadline.app.settings`): the one
place that chooses the model behind every use (chat replies, the first utterance on every
channel, the operator handoff summary). Read from `THREADLINE_LLM_*` variables there."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class LanguageModelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ENV_PREFIX: ClassVar[str] = "THREADLINE_LLM_"

    # offline: the grounded deterministic generator (no network). openai: any server that
    # speaks the Chat Completions API (OpenAI, vLLM, llama.cpp, Ollama), with the offline
    # generator as the recorded fallback.
    provider: Literal["offline", "openai"] = "offline"
    # e.g. http://127.0.0.1:8000/v1 for a local vLLM; unset means the SDK's default (OpenAI).
    base_url: str | None = None
    # The provider's model id (vLLM: the served model name; Ollama: e.g. llama3.1).
    model: str = "gpt-4o-mini"
    # Sent as a bearer token; unset sends a placeholder (local servers need none).
    api_key: SecretStr | None = None
    # Per request; a request that takes longer counts as a failure (fallback, recorded).
    timeout_s: float = Field(default=20.0, gt=0, le=300)
    # Retries after a timeout, connection error, 429 or 5xx, before falling back.
    max_retries: int = Field(default=1, ge=0, le=10)
