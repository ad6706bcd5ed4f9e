"""The OpenAI-compatible implementation of the language-model port (`threadline.agent.lm`),
with the `openai` SDK: OpenAI itself or any server speaking the Chat Completions API (vLLM,
llama.cpp, Ollama). Base URL, model, key, timeout and retries come from the one
`THREADLINE_LLM_*` section, so configuring it switches every use at once.

- `step`: function calling with the same tool schemas the offline model's tools use, plus
  `verify_identity`, which the runtime turns into IdentityClaimed/IdentityVerified/
  VerificationFailed (never a ToolCalled: a date of birth has no place in tool arguments).
- `first_utterance`: the model sees only a summary built from the agent context, without
  identity material; its answer must name the topic (or a key entity) and carry no private
  value.
- `handoff_summary`: the same summary, for an operator.

Every failure (timeout after the SDK's retries, connection error, HTTP error, unreadable or
unusable output) raises `ModelUnavailableError` with a machine-readable reason; the port's
`FallbackLM` or the agent runtime then uses the offline generator and records
`ModelFallbackUsed`.
"""

from __future__ import annotations

import json
from typing import Any

import openai

from threadline.agent.lm import ModelUnavailableError
from threadline.agent.model import (
    MAX_STEPS,
    Action,
    CallTool,
    Outcome,
    Reply,
    TurnState,
    Verify,
)
from threadline.agent.persona import PERSONA
from threadline.agent.settings import LanguageModelSettings
from threadline.agent.tools import TOOL_SPECS
from threadline.handoff.first_utterance import (
    MAX_CHARS,
    PRIVATE_KINDS,
    key_entities,
    leg_channel,
)
from threadline.ledger.events import HandoffChannel
from threadline.projections.context_model import AgentContext

VERIFY_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "verify_identity",
        "description": "Verify the member with their member or policy number and date of birth.",
        "parameters": {
            "type": "object",
            "properties": {
                "member_or_policy_number": {"type": "string"},
                "date_of_birth": {"type": "string", "description": "YYYY-MM-DD"},
            },
            "required": ["member_or_policy_number", "date_of_birth"],
            "additionalProperties": False,
        },
    },
}
_SIGNAL_HINTS = {
    "compliance_step": "The member raised a consent/authorisation step: explain it is taken "
    "by voice and recorded.",
    "complex_pricing": "The member wants a detailed pricing comparison.",
    "frustration_spike": "The member sounds frustrated: acknowledge it briefly.",
    "explicit_request": "The member asked for a call: agree warmly.",
    "explicit_request_human": "The member asked for a person: say honestly that a colleague "
    "from the team has to take this and that you cannot bring one in yourself; offer to book "
    "a callback or to take a message for the team. Do not offer a call with you instead.",
}


INSTRUCTION = (
    "The member just moved from the web chat to another channel with you (`channel`: "
    "webrtc = voice in the same widget; pstn = a phone call you placed, or they placed if "
    "`inbound`; sms/whatsapp = a text thread). Say your first message there, "
    "two or three short sentences: name what they were asking about "
    "(topic and key details from the summary), acknowledge that they are already verified "
    "if verified_level > 0 (do not ask again), and say the next step. Reply with the spoken "
    "text only."
)


SUMMARY_INSTRUCTION = (
    "A colleague is taking this conversation over from you. In at most three short "
    "sentences for them (not for the member), say what the member asked for, the key "
    "details, what is still open and whether they are verified. Reply with the text only."
)


def _reason(exc: Exception) -> str:
    """A short, stable cause for `ModelFallbackUsed` (never the provider's message, which
    may echo the request)."""
    if isinstance(exc, openai.APITimeoutError):
        return "timeout"
    if isinstance(exc, openai.APIConnectionError):
        return "connection"
    if isinstance(exc, openai.APIStatusError):
        return f"http_{exc.status_code}"
    return type(exc).__name__


class OpenAILM:
    name = "openai"

    def __init__(self, settings: LanguageModelSettings | None = None, client: Any | None = None):
        self.settings = settings or LanguageModelSettings(provider="openai")
        self.model: str | None = self.settings.model
        key = self.settings.api_key
        self.client: Any = client or openai.OpenAI(
            base_url=self.settings.base_url,
            # A local server needs no key, but the SDK insists on one.
            api_key=key.get_secret_value() if key is not None else "unset",
            timeout=self.settings.timeout_s,
            max_retries=self.settings.max_retries,
        )

    def _complete(self, **kwargs: Any) -> Any:
        try:
            response = self.client.chat.completions.create(model=self.model, **kwargs)
            return response.choices[0].message
        except openai.OpenAIError as exc:
            raise ModelUnavailableError(_reason(exc)) from exc
        except (IndexError, AttributeError, TypeError) as exc:
            raise ModelUnavailableError("invalid_output", type(exc).__name__) from exc

    def step(self, state: TurnState) -> Action:
        final = len(state.steps) >= MAX_STEPS
        tools = [spec.json_schema() for spec in TOOL_SPECS.values()]
        if state.member is None:
            tools.append(VERIFY_TOOL)
        message = self._complete(
            messages=self.messages(state),
            tools=tools,
            tool_choice="none" if final else "auto",
            temperature=0.2,
            max_tokens=300,
        )
        calls = getattr(message, "tool_calls", None) or []
        if calls and not final:
            call = calls[0]
            try:
                args = json.loads(call.function.arguments or "{}")
            except ValueError:
                raise ModelUnavailableError("invalid_output", "tool arguments") from None
            if not isinstance(args, dict):
                raise ModelUnavailableError("invalid_output", "tool arguments not an object")
            if call.function.name == "verify_identity":
                return Verify(
                    str(args.get("member_or_policy_number", "")), str(args.get("date_of_birth", ""))
                )
            return CallTool(call.function.name, args)
        text = (message.content or "").strip()
        if not text:
            raise ModelUnavailableError("invalid_output", "empty reply")
        return Reply(text)

    def messages(self, state: TurnState) -> list[dict[str, Any]]:
        ctx = state.context
        facts = {
            "today": state.today.isoformat(),
            "channel": "voice call" if state.channel in ("webrtc", "pstn") else "web chat",
            "member_verified": state.member is not None,
            "topic": ctx.topic.phrase if ctx.topic else None,
        }
        system = [{"role": "system", "content": PERSONA}]
        system.append({"role": "system", "content": "Conversation facts: " + json.dumps(facts)})
        for s in state.signals:
            system.append({"role": "system", "content": _SIGNAL_HINTS[s.kind]})
        history: list[dict[str, Any]] = []
        for t in ctx.recent_turns:
            if state.turn_position is not None and t.position >= state.turn_position:
                continue
            if t.role in ("visitor", "agent"):
                role = "user" if t.role == "visitor" else "assistant"
                history.append({"role": role, "content": t.text})
            elif t.role == "operator":  # a person held the conversation: their words count
                history.append({"role": "assistant", "content": f"(a human colleague) {t.text}"})
        history.append({"role": "user", "content": state.text})
        for i, outcome in enumerate(state.steps):
            history.extend(_step_messages(i, outcome))
        return system + history

    def summary(
        self,
        context: AgentContext,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> dict[str, Any]:
        """What the model is told about the conversation: no identity material."""
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

    def first_utterance(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        summary = self.summary(context, level, reason, channel, inbound)
        message = self._complete(
            messages=[
                {"role": "system", "content": PERSONA},
                {"role": "system", "content": INSTRUCTION},
                {"role": "user", "content": json.dumps(summary)},
            ],
            temperature=0.2,
            max_tokens=120,
        )
        text = (message.content or "").strip()
        if not _acceptable(text, context):
            raise ModelUnavailableError("invalid_output", "first utterance refused")
        return text

    def handoff_summary(self, context: AgentContext, *, reason: str | None) -> str:
        summary = self.summary(context, context.verification.level, reason)
        message = self._complete(
            messages=[
                {"role": "system", "content": SUMMARY_INSTRUCTION},
                {"role": "user", "content": json.dumps(summary)},
            ],
            temperature=0.2,
            max_tokens=160,
        )
        text = (message.content or "").strip()
        if not text or len(text) > 2000 or _private_in(text, context):
            raise ModelUnavailableError("invalid_output", "summary refused")
        return text


def _step_messages(i: int, outcome: Outcome) -> list[dict[str, Any]]:
    call_id = outcome.call_id or f"step-{i}"
    if isinstance(outcome.action, Verify):
        name = "verify_identity"
        arguments = {
            "member_or_policy_number": outcome.action.identifier,
            "date_of_birth": outcome.action.date_of_birth,
        }
        content: Any = {"verified": bool(outcome.verified)}
    else:
        name, arguments = outcome.action.name, outcome.action.arguments
        content = {"error": outcome.error} if outcome.error else {"result": outcome.result}
    return [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": name, "arguments": json.dumps(arguments)},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call_id, "content": json.dumps(content, default=str)},
    ]


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
