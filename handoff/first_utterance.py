"""The voice agent's first sentence, generated from the agent-context projection of the
replayed stream (never from anything the widget sends).

It does four things, in order: says how the visitor now reaches the same agent (voice in the
widget, a phone call the agent placed or the visitor made, a text thread), names
what they were asking about (the topic phrase and a few key entities: a claim or order
number, an amount, a product, plus the status a lookup found), acknowledges the verification
they already passed (or says one is needed), and states the next step.

The offline generator is deterministic and topic-agnostic: every noun, entity and status it
says comes from the context, and the only fixed wording is connective. It never reads out
identity material: member and policy numbers, names and full dates (a date of birth is a
date) are not spoken. `first_utterance_openai` is the optional LLM provider.
"""

from __future__ import annotations

import re
from typing import Any, Protocol

from threadline.ledger.events import HandoffChannel
from threadline.projections.context_model import AgentContext, Entity, Handoff, ToolCall

MAX_CHARS = 400

# Entity kinds that identify the visitor rather than the matter: never spoken.
PRIVATE_KINDS = frozenset({"member_number", "policy_number", "name", "date"})
# For a topic noun, the kinds of entity that say *which one* it is.
_REFERENCE_KINDS: dict[str, tuple[str, ...]] = {
    "claim": ("claim_number", "reference"),
    "order": ("order_number", "reference"),
    "delivery": ("order_number", "reference"),
    "return": ("order_number", "reference"),
    "refund": ("order_number", "claim_number", "reference"),
}
_DEFAULT_REFERENCE = ("reference", "claim_number", "order_number")
_PRICE_NOUNS = frozenset({"plan", "quote", "premium", "coverage", "deductible", "membership"})

# What the agent does next, by why voice was needed, then by topic noun.
_NEXT_BY_REASON: dict[str, str] = {
    "compliance_step": "let's take your authorisation now, on this recorded call",
    "complex_pricing": "let's go through the options and the numbers together",
    "frustration_spike": "let's get this sorted out properly now",
    "explicit_request": "let's talk it through",
}
_NEXT_BY_NOUN: dict[str, str] = {
    "claim": "let me pull that up",
    "appointment": "let's find you a time",
    "booking": "let's find you a time",
    "order": "let me check where it is",
    "delivery": "let me check where it is",
    "bill": "let me go through the charges with you",
    "invoice": "let me go through the charges with you",
    "charge": "let me go through the charges with you",
    "payment": "let me check that payment",
    "refund": "let me check on that refund",
}
_ACK_BY_REASON: dict[str, str] = {
    "frustration_spike": "I'm sorry this has taken a while. ",
}
# The opening, by the channel the new leg is on. A PSTN handoff is a call the agent placed
# (dial-out); `inbound=True` is the visitor calling in.
_OPENING: dict[str, str] = {
    "webrtc": "Thanks for switching to voice.",
    "pstn": "Thanks for taking my call.",
    "sms": "Thanks for continuing by text.",
    "whatsapp": "Thanks for continuing on WhatsApp.",
    "email": "Thanks for continuing by email.",
}
_OPENING_INBOUND = "Thanks for calling."
_TEXT_CHANNELS = frozenset({"sms", "whatsapp", "email"})
# Next steps that only make sense when speaking, rephrased for a text thread.
_NEXT_BY_REASON_TEXT: dict[str, str] = {
    "compliance_step": "let's take your authorisation now, here in this thread",
    "explicit_request": "let's work through it here",
}


class UtteranceGenerator(Protocol):
    def generate(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        """The first thing the agent says on the new leg. `level` is the verification
        level the leg inherited (0 if none); `reason` why the handoff was offered; `channel`
        the new leg's channel (default: the latest handoff's, else webrtc); `inbound` the
        visitor called in rather than the agent dialling out (PSTN)."""
        ...


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def key_entities(context: AgentContext) -> list[Entity]:
    """At most three entities worth naming: which item (a reference number), how much (an
    amount), and for pricing topics which product; each the most recent of its kind."""
    noun = context.topic.noun if context.topic else None
    phrase = context.topic.phrase.lower() if context.topic else ""
    chosen: list[Entity] = []
    ref_kinds = _REFERENCE_KINDS.get(noun or "", _DEFAULT_REFERENCE)
    ref = next(iter(context.entities_of(*ref_kinds)), None)  # type: ignore[arg-type]
    if ref is not None:
        chosen.append(ref)
    amount = next(iter(context.entities_of("amount")), None)
    if amount is not None:
        chosen.append(amount)
    if noun in _PRICE_NOUNS or noun is None:
        product = next(iter(context.entities_of("product")), None)
        if product is not None and product.value.lower() not in phrase:
            chosen.append(product)
    if not context.topic:
        month = next(iter(context.entities_of("month")), None)
        if month is not None:
            chosen.append(month)
    return [e for e in chosen if e.kind not in PRIVATE_KINDS]


def _spoken(entity: Entity) -> str:
    if entity.kind == "amount":
        currency, _, number = entity.value.partition(" ")
        symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
        if symbol:
            whole, _, cents = number.partition(".")
            value = f"{symbol}{int(whole):,}" + (f".{cents}" if cents not in ("", "00") else "")
            return value
    return entity.value


def _status_of(call: ToolCall, refs: set[str]) -> str | None:
    """A found item's status from the latest lookup, if that lookup is about what we name."""
    result: Any = call.result
    if isinstance(result, list) and len(result) == 1:
        result = result[0]
    if not isinstance(result, dict):
        return None
    status = result.get("status")
    if not isinstance(status, str) or not status:
        return None
    reference = result.get("reference")
    if refs and isinstance(reference, str) and reference.upper() not in refs:
        return None
    text = status.replace("_", " ")
    detail = result.get("status_detail")
    if isinstance(detail, str) and detail:
        text += f", {detail}"
    return text


def _latest_ok_lookup(context: AgentContext) -> ToolCall | None:
    for call in reversed(context.tool_calls):
        if call.status == "ok" and call.name == "lookup":
            return call
    return None


def _handoff_reason(context: AgentContext, reason: str | None) -> str | None:
    if reason:
        return reason
    latest: Handoff | None = context.handoffs[-1] if context.handoffs else None
    return latest.reason if latest else None


def leg_channel(context: AgentContext, channel: HandoffChannel | None) -> HandoffChannel:
    if channel is not None:
        return channel
    return context.handoffs[-1].channel if context.handoffs else "webrtc"


def opening(channel: HandoffChannel, *, inbound: bool = False) -> str:
    if channel == "pstn" and inbound:
        return _OPENING_INBOUND
    return _OPENING[channel]


class OfflineUtterances:
    """Deterministic: the same context, level and reason always give the same sentence."""

    def generate(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> str:
        reason = _handoff_reason(context, reason)
        channel = leg_channel(context, channel)
        parts = [_ACK_BY_REASON.get(reason or "", "") + opening(channel, inbound=inbound)]
        entities = key_entities(context)
        refs = {e.value.upper() for e in entities if e.kind != "amount"}
        call = _latest_ok_lookup(context)
        status = _status_of(call, refs) if call is not None else None
        if context.topic is not None:
            sentence = f"I see you were asking about your {context.topic.phrase}"
            for e in entities:
                if e.kind == "amount":
                    sentence += f" for {_spoken(e)}"
                elif e.kind == "product":
                    sentence += f", the {_spoken(e)}"
                else:
                    sentence += f" {_spoken(e)}"
            if status:
                sentence += f", which is {status}"
            parts.append(sentence + ".")
        elif entities:
            parts.append(f"I see you mentioned {' and '.join(_spoken(e) for e in entities)}.")
        else:
            parts.append("I have our whole chat in front of me.")
        if level > 0:
            parts.append("You're already verified, so you won't need to repeat your details.")
        else:
            parts.append("Before we go into your account, I'll need to confirm who you are.")
        noun = context.topic.noun if context.topic else ""
        by_reason = _NEXT_BY_REASON.get(reason or "")
        if channel in _TEXT_CHANNELS:
            by_reason = _NEXT_BY_REASON_TEXT.get(reason or "", by_reason)
        next_step = by_reason or _NEXT_BY_NOUN.get(noun, "let's pick up where we left off")
        if reason in _NEXT_BY_REASON and noun in _NEXT_BY_NOUN and not status:
            next_step = f"{_NEXT_BY_NOUN[noun]}, and {next_step}"
        parts.append(next_step[0].upper() + next_step[1:] + ".")
        text = _clean(" ".join(parts))
        return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"
