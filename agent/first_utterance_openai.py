"""First utterance from an OpenAI-compatible chat model (openai SDK, `openai` extra).

Endpoint and key come from the SDK's own `OPENAI_BASE_URL` / `OPENAI_API_KEY`. The model
sees only a summary built from the agent context, without identity material, and its
answer is checked before use: it must name the topic (or a key entity) and must not contain
any private value; otherwise — and on any provider error — the offline sentence is used, so
a handoff never fails because of the model.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import openai

from threadline.agent.persona import PERSONA
from threadline.handoff.first_utterance import (
    MAX_CHARS,
    PRIVATE_KINDS,
    OfflineUtterances,
    key_entities,
    leg_channel,
)
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.events import HandoffChannel
from threadline.projections.context_model import AgentContext

log = logging.getLogger(__name__)

INSTRUCTION = (
    "The member just moved from the web chat to another channel with you (`channel`: "
    "webrtc = voice in the same widget; pstn = a phone call you placed, or they placed if "
    "`inbound`; sms/whatsapp = a text thread). Say your first message there, "
    "two or three short sentences: name what they were asking about "
    "(topic and key details from the summary), acknowledge that they are already verified "
    "if verified_level > 0 (do not ask again), and say the next step. Reply with the spoken "
    "text only."
)


class OpenAIUtterances:
    def __init__(self, client: Any | None = None, settings: HandoffSettings | None = None) -> None:
        self.settings = settings or HandoffSettings()
        self.client: Any = client or openai.OpenAI(timeout=self.settings.openai_timeout_s)
        self.fallback = OfflineUtterances()

    def summary(
        self,
        context: AgentContext,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> dict[str, Any]:
        return {
            "channel": leg_channel(context, channel),
            "inbound": inbound,
            "topic": context.topic.phrase if context.topic else None,
            "key_details": [e.value for e in key_entities(context)],
            "open_questions": [
                q.text for q in context.open_questions if not _private_in(q.text, context)
            ][-2:],
            "verified_level": level,
            "why_voice": reason,
            "last_lookup": _last_lookup(context),
        }

    def generate(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        fallback = self.fallback.generate(
            context, level=level, reason=reason, channel=channel, inbound=inbound
        )
        summary = self.summary(context, level, reason, channel, inbound)
        try:
            response = self.client.chat.completions.create(
                model=self.settings.openai_model,
                messages=[
                    {"role": "system", "content": PERSONA},
                    {"role": "system", "content": INSTRUCTION},
                    {"role": "user", "content": json.dumps(summary)},
                ],
                temperature=0.2,
                max_tokens=120,
            )
            text = (response.choices[0].message.content or "").strip()
        except openai.OpenAIError as exc:
            log.warning("first utterance provider failed (%s); using the offline one", exc)
            return fallback
        if not _acceptable(text, context):
            log.warning("first utterance from the provider was unusable; using the offline one")
            return fallback
        return text


def _last_lookup(context: AgentContext) -> Any:
    for call in reversed(context.tool_calls):
        if call.name == "lookup" and call.status == "ok":
            return call.result
    return None


def _private_in(text: str, context: AgentContext) -> bool:
    lowered = text.lower()
    values = [e.value for e in context.entities if e.kind in PRIVATE_KINDS]
    values += [e.text for e in context.entities if e.kind in PRIVATE_KINDS]
    if context.verification.subject:
        values.append(context.verification.subject)
    return any(v and v.lower() in lowered for v in values)


def _acceptable(text: str, context: AgentContext) -> bool:
    if not text or len(text) > MAX_CHARS or _private_in(text, context):
        return False
    lowered = text.lower()
    anchors = [e.value.lower() for e in key_entities(context)]
    if context.topic is not None:
        anchors.append(context.topic.noun)
    return not anchors or any(a in lowered for a in anchors)
