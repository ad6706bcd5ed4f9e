"""Voice sessions: a handoff token and a browser SDP offer in, a live WebRTC leg out.

The one place that wires a leg together: redeem the token (the handoff service appends
LegOpened, IdentityVerified(handoff_token) and HandoffCompleted with the first utterance),
build the recognition vocabulary from the replayed context, bind the pipeline's events to the
conversation, answer the offer and speak the first utterance as soon as media flows.
`prepare` starts that first utterance at the handoff's acceptance instead (`presynth.py`).
aiortc is imported only when the first leg opens.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from threadline.channels.voice.errors import (
    InvalidOfferError,
    LegNotFoundError,
    ProviderUnavailableError,
    VoiceError,
)
from threadline.channels.voice.pipeline import OUTPUT_RATE, VoicePipeline
from threadline.channels.voice.ports import (
    EventSink,
    SpeechToText,
    TextToSpeech,
    TurnHandler,
    VisitorTurn,
)
from threadline.channels.voice.presynth import FirstAudioCache
from threadline.channels.voice.providers import (
    make_stt,
    make_tts,
    system_phrases,
    unavailable,
)
from threadline.channels.voice.settings import VoiceSettings
from threadline.channels.voice.vocabulary import build_vocabulary
from threadline.ledger.envelope import NewEvent
from threadline.projections.human import holder_of

if TYPE_CHECKING:
    from threadline.channels.voice.webrtc import IceConfig, WebRtcLeg
    from threadline.handoff.prepared import PreparedUtterance
    from threadline.handoff.service import VoiceLegGrant
    from threadline.ledger.store import Ledger
    from threadline.projections.context_model import AgentContext

log = logging.getLogger(__name__)
MAX_SDP_CHARS = 32_000


class Redeemer(Protocol):
    def redeem(
        self,
        token: str,
        transport_ref: str | None = None,
        *,
        conversation_id: str | None = None,
        channel: Any = None,
    ) -> VoiceLegGrant: ...


@runtime_checkable
class Preparer(Protocol):
    def prepare_first_utterance(
        self, conversation_id: str, handoff_id: str
    ) -> PreparedUtterance | None: ...


# conversation id, leg id → the agent's reply to one transcribed visitor turn
AgentFactory = Callable[[str, str], Callable[[str], Awaitable[str | None]]]


@dataclass(frozen=True, slots=True)
class OpenedLeg:
    conversation_id: str
    leg_id: str
    sdp: str
    first_utterance: str


def vocabulary_from_context(context: AgentContext) -> Any:
    """What the visitor is likely to say: their own chat lines, the topic, the open
    questions, every entity (by its surface form and its value)."""
    texts = [t.text for t in context.recent_turns if t.role == "visitor"]
    if context.topic is not None:
        texts.append(context.topic.phrase)
    texts.extend(q.text for q in context.questions)
    entities = [e.text for e in context.entities] + [e.value for e in context.entities]
    return build_vocabulary(texts, entities)


def ai_may_speak(ledger: Ledger, conversation_id: str) -> Callable[[], Awaitable[bool]]:
    """The pipeline's `may_speak`: not while a person holds the conversation (the agent
    answers nothing then, agent/voice.py), read from the stream off the loop."""

    async def may_speak() -> bool:
        events = await asyncio.to_thread(ledger.read, conversation_id)
        return holder_of(events) is None

    return may_speak


def ledger_sink(ledger: Ledger, conversation_id: str) -> EventSink:
    """Appends on a worker thread: the store is blocking and the media loop must not be."""

    async def record(event: NewEvent) -> None:
        await asyncio.to_thread(ledger.append, conversation_id, event)

    return record


class VoiceSessions:
    def __init__(
        self,
        ledger: Ledger,
        handoffs: Redeemer,
        *,
        agent: AgentFactory | None = None,
        settings: VoiceSettings | None = None,
        stt: SpeechToText | None = None,
        tts: TextToSpeech | None = None,
    ) -> None:
        self.ledger = ledger
        self.handoffs = handoffs
        self.agent = agent
        self.settings = settings or VoiceSettings()
        self.stt = stt or make_stt(self.settings)
        self.tts = tts or make_tts(self.settings, system_phrases())
        self.legs: dict[str, WebRtcLeg] = {}
        # First utterances synthesised from the handoff's acceptance, at the legs' rate.
        self.first_audio = FirstAudioCache(self.tts, OUTPUT_RATE)
        self.first_audio.follow_erasures(handoffs)  # the audio goes with an erased subject
        self._preparing: set[asyncio.Task[None]] = set()
        self._configured = False
        self._vad_warned = False
        # Checked once at start-up and said in one line; a leg is then refused (503) before
        # its handoff token is redeemed, rather than connecting a silent call.
        self.unavailable = unavailable(self.stt, self.tts)
        if self.unavailable is not None:
            log.warning("voice is unavailable: %s", self.unavailable)

    def _configure(self) -> None:
        if not self._configured:
            from threadline.channels.voice.webrtc import configure_host_addresses

            configure_host_addresses(self.settings.ice_host_addresses)
            self._configured = True

    def prepare(self, conversation_id: str, handoff_id: str) -> None:
        """The visitor accepted a voice handoff: compose its first utterance and start
        synthesising it now, in the background, so it is ready when the leg connects."""
        preparer = self.handoffs
        if not isinstance(preparer, Preparer) or not self.settings.voice_presynthesis:
            return
        if self.unavailable is not None:
            return
        task = asyncio.ensure_future(self._prepare(preparer, conversation_id, handoff_id))
        self._preparing.add(task)
        task.add_done_callback(self._preparing.discard)

    async def _prepare(self, preparer: Preparer, conversation_id: str, handoff_id: str) -> None:
        since = self.first_audio.erasures  # an erasure while composing: nothing is started
        try:
            made = await asyncio.to_thread(
                preparer.prepare_first_utterance, conversation_id, handoff_id
            )
        except Exception as exc:  # the leg composes it at redeem instead
            log.warning("could not prepare a first utterance: %s", type(exc).__name__)
            return
        if made is not None:
            key = (conversation_id, handoff_id)
            self.first_audio.start(key, made.text, made.expires_at, since=since)

    async def open(self, handoff_token: str, sdp: str, sdp_type: str) -> OpenedLeg:
        # Checked before the token is redeemed: a malformed request must not use it up.
        if sdp_type != "offer" or "m=audio" not in sdp or len(sdp) > MAX_SDP_CHARS:
            raise InvalidOfferError("expected an SDP offer (type 'offer') with an audio section")
        if self.unavailable is not None:
            # The reason (paths, package names) is in the start-up log, not for the visitor.
            raise ProviderUnavailableError("voice is unavailable on this server")
        if len(self.legs) >= self.settings.voice_max_legs:
            raise VoiceError("too many voice legs on this server")
        self._configure()
        from threadline.channels.voice.offer_check import check_offer
        from threadline.channels.voice.webrtc import WebRtcLeg

        # The whole offer is negotiated before the token is redeemed: redeeming appends the
        # leg and spends the token, which a request that ends in 422 must not do.
        await check_offer(sdp)
        grant = await asyncio.to_thread(
            self.handoffs.redeem, handoff_token, "webrtc", channel="webrtc"
        )
        cid, leg_id = grant.conversation_id, grant.leg_id
        pipeline = VoicePipeline(
            leg_id=leg_id,
            stt=self.stt,
            tts=self.tts,
            on_turn=self._turn_handler(cid, leg_id),
            record=ledger_sink(self.ledger, cid),
            vocabulary=vocabulary_from_context(grant.context),
            vad=self._vad(),
            new_vad=self._vad,
            may_speak=ai_may_speak(self.ledger, cid),
        )
        s = self.settings
        leg = WebRtcLeg(
            pipeline,
            ice=self.ice_config(),
            peer_timeout_s=s.voice_peer_timeout_s,
            on_closed=self._forget,
            conversation_id=cid,
        )
        self.legs[leg_id] = leg
        prepared = self.first_audio.take((cid, grant.handoff_id), grant.first_utterance)
        try:
            answer = await leg.accept(sdp, "offer", grant.first_utterance, prepared)
        except InvalidOfferError:
            self.legs.pop(leg_id, None)
            raise
        return OpenedLeg(cid, leg_id, answer, grant.first_utterance)

    def _vad(self) -> Any:
        """Silero when configured and installed; otherwise the energy detector (said once)."""
        from threadline.channels.voice.vad import EnergyVad, VadConfig

        config = VadConfig(end_silence_ms=self.settings.voice_end_silence_ms)
        if self.settings.voice_vad == "silero":
            try:
                from threadline.channels.voice.vad_silero import SileroVad

                return SileroVad(config=config)
            except (ProviderUnavailableError, ImportError) as exc:
                if not self._vad_warned:
                    log.warning("Silero VAD unavailable, using the energy detector: %s", exc)
                    self._vad_warned = True
        return EnergyVad(config=config)

    def ice_config(self) -> IceConfig:
        """The ICE servers every peer of this process uses (visitor legs, operator bridges)."""
        from threadline.channels.voice.webrtc import IceConfig

        s = self.settings
        return IceConfig(
            servers=s.ice_servers,
            username=s.ice_turn_username,
            credential=s.ice_turn_password.get_secret_value() if s.ice_turn_password else None,
        )

    def conversation_of(self, leg_id: str) -> str:
        leg = self.legs.get(leg_id)
        if leg is None:
            raise LegNotFoundError(f"no live voice leg {leg_id}")
        return str(leg.conversation_id)

    async def close(self, leg_id: str, reason: str = "visitor_hangup") -> None:
        leg = self.legs.get(leg_id)
        if leg is None:
            raise LegNotFoundError(f"no live voice leg {leg_id}")
        await leg.close(reason)

    async def close_all(self, reason: str = "server_shutdown") -> None:
        await asyncio.gather(*(leg.close(reason) for leg in list(self.legs.values())))
        await asyncio.gather(*self._preparing, return_exceptions=True)
        await self.first_audio.aclose()

    async def _forget(self, leg: WebRtcLeg, reason: str) -> None:
        self.legs.pop(leg.leg_id, None)
        log.info("voice leg %s closed: %s", leg.leg_id, reason)

    def _turn_handler(self, conversation_id: str, leg_id: str) -> TurnHandler:
        if self.agent is None:

            async def silent(turn: VisitorTurn) -> str | None:
                return None

            return silent
        reply = self.agent(conversation_id, leg_id)

        async def on_turn(turn: VisitorTurn) -> str | None:
            return await reply(turn.text)

        return on_turn
