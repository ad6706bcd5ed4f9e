"""An OpenAI-compatible chat model behind the `LanguageModel` port (openai SDK, `openai`
extra). Endpoint and key come from the SDK's `OPENAI_BASE_URL` / `OPENAI_API_KEY`, the model
name from `THREADLINE_OPENAI_MODEL`. The tools are offered by function calling with the
same schemas the offline model's tools use, plus `verify_identity`, which the runtime turns
into IdentityClaimed/IdentityVerified/VerificationFailed (never a ToolCalled: a date of birth
has no place in tool arguments). Provider failures raise AgentError; the runtime then falls
back to the offline model for that turn.
"""

from __future__ import annotations

import json
from typing import Any

import openai

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
from threadline.agent.tools import TOOL_SPECS
from threadline.handoff.errors import AgentError
from threadline.handoff.settings import HandoffSettings

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
    "explicit_request_human": "The member asked for a person: agree warmly; a colleague or a "
    "voice call can take over.",
}


class OpenAIModel:
    name = "openai"

    def __init__(self, client: Any | None = None, settings: HandoffSettings | None = None):
        self.settings = settings or HandoffSettings()
        self.client: Any = client or openai.OpenAI(
            timeout=self.settings.openai_timeout_s, max_retries=1
        )

    def step(self, state: TurnState) -> Action:
        final = len(state.steps) >= MAX_STEPS
        tools = [spec.json_schema() for spec in TOOL_SPECS.values()]
        if state.member is None:
            tools.append(VERIFY_TOOL)
        try:
            response = self.client.chat.completions.create(
                model=self.settings.openai_model,
                messages=self.messages(state),
                tools=tools,
                tool_choice="none" if final else "auto",
                temperature=0.2,
                max_tokens=300,
            )
            message = response.choices[0].message
        except (openai.OpenAIError, IndexError, AttributeError) as exc:
            raise AgentError(f"the language model failed: {type(exc).__name__}") from exc
        calls = getattr(message, "tool_calls", None) or []
        if calls and not final:
            call = calls[0]
            try:
                args = json.loads(call.function.arguments or "{}")
            except ValueError:
                raise AgentError("the language model sent unreadable tool arguments") from None
            if not isinstance(args, dict):
                raise AgentError("the language model sent tool arguments that are not an object")
            if call.function.name == "verify_identity":
                return Verify(
                    str(args.get("member_or_policy_number", "")), str(args.get("date_of_birth", ""))
                )
            return CallTool(call.function.name, args)
        return Reply((message.content or "").strip())

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
