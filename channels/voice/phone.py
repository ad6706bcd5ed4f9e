"""Voice legs for telephone transports (PSTN): the same pipeline, providers and agent as the
WebRTC legs in `sessions.py`, built per call by the PSTN channel (`threadline.channels.pstn.ports.
VoiceLegFactory`). Nothing here touches media: the PSTN channel moves the RTP frames."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from threadline.channels.voice.pipeline import VoicePipeline
from threadline.channels.voice.ports import SpeechToText, TextToSpeech, TurnHandler, VisitorTurn
from threadline.channels.voice.sessions import ai_may_speak, ledger_sink, vocabulary_from_context

if TYPE_CHECKING:
    from threadline.ledger.store import Ledger
    from threadline.projections.context_model import AgentContext

# conversation id, leg id → the agent's reply to one transcribed caller turn
PhoneAgent = Callable[[str, str], Callable[[str], Awaitable[str | None]]]


class PhoneLegs:
    """`PhoneLegs(...)(conversation_id, leg_id, rate, context)` → a `VoicePipeline` whose
    turns are recorded on the conversation, recognised with the conversation's vocabulary
    and answered by `agent` (None: the leg only speaks its first utterance and listens)."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        stt: SpeechToText,
        tts: TextToSpeech,
        agent: PhoneAgent | None = None,
    ) -> None:
        self.ledger = ledger
        self.stt = stt
        self.tts = tts
        self.agent = agent

    def __call__(
        self, conversation_id: str, leg_id: str, rate: int, context: AgentContext
    ) -> VoicePipeline:
        return VoicePipeline(
            leg_id=leg_id,
            stt=self.stt,
            tts=self.tts,
            on_turn=self._turn_handler(conversation_id, leg_id),
            record=ledger_sink(self.ledger, conversation_id),
            vocabulary=vocabulary_from_context(context),
            output_rate=rate,
            may_speak=ai_may_speak(self.ledger, conversation_id),
        )

    def _turn_handler(self, conversation_id: str, leg_id: str) -> TurnHandler:
        reply = self.agent(conversation_id, leg_id) if self.agent is not None else None

        async def on_turn(turn: VisitorTurn) -> str | None:
            return await reply(turn.text) if reply is not None else None

        return on_turn
