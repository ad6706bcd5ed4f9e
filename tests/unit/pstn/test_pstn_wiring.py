"""bootstrap() turns PSTN on only with a trunk, and the calls run the WebRTC legs' voice stack:
the same STT/TTS instances, the chat's agent (channel=pstn), the conversation's vocabulary."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from uuid import uuid4

import pytest

from threadline.app.bootstrap import bootstrap
from threadline.app.settings import load_settings
from threadline.channels.http.app import create_app
from threadline.channels.services import Services
from threadline.channels.voice.phone import PhoneLegs
from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.stt_whisper import WhisperBeamView, WhisperSTT
from threadline.handoff.service import HandoffService
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import ConversationStarted, LegOpened, MessagePosted


@pytest.fixture
def env() -> dict[str, str]:
    """The process environment the server would be started with."""
    return {
        "THREADLINE_DATABASE_URL": "memory://",
        "THREADLINE_SECRET": "wiring-secret-0123456789abcdef-0123",
    }


@contextmanager
def served(env: dict[str, str]) -> Iterator[Services]:
    services = bootstrap(load_settings(env))
    try:
        yield services
    finally:
        services.close()


def test_no_trunk_no_pstn(env: dict[str, str]) -> None:
    with served(env) as services:
        assert services.pstn is None


def test_a_trunk_wires_pstn_on_the_webrtc_voice_stack(env: dict[str, str]) -> None:
    env["THREADLINE_PSTN_TRUNK"] = "127.0.0.1:5099"
    with served(env) as services:
        assert services.pstn is not None
        assert services.pstn.settings.trunk_address() == ("127.0.0.1", 5099)
        legs = services.pstn._voice
        assert isinstance(legs, PhoneLegs)
        stt, tts = services.voice_providers or (None, None)
        # Phone legs: the one recogniser, decoding with the phone beam; WebRTC legs: greedy.
        assert isinstance(stt, WhisperSTT)
        assert stt.beam_size == 1
        assert isinstance(legs.stt, WhisperBeamView)
        assert (legs.stt.base, legs.stt.beam_size, legs.tts) == (stt, 5, tts)
        app = create_app(services, close_services=False)
        assert (app.state.voice.stt, app.state.voice.tts) == (stt, tts)
        assert legs.agent is not None
        handler = legs.agent("c-1", "leg-1")
        assert handler.channel == "pstn"  # type: ignore[attr-defined]
        assert handler.voice is services.voice_agent  # type: ignore[attr-defined]

        cid = str(uuid4())
        services.ledger.append_batch(
            cid,
            [
                NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
                NewEvent("LegOpened", LegOpened(channel="chat"), leg_id="c1"),
                NewEvent(
                    "MessagePosted",
                    MessagePosted(role="visitor", text="about my January claim please"),
                    leg_id="c1",
                ),
            ],
        )
        context = HandoffService(services.ledger).context(cid)

        async def build() -> VoicePipeline:
            return legs(cid, "leg-1", 8000, context)

        pipeline = asyncio.run(build())
        assert pipeline.playback.sample_rate == 8000
        assert pipeline.vocabulary is not None
        assert "january" in " ".join(pipeline.vocabulary.phrases)
