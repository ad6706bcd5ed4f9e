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
date) are not spoken. The language-model port (`threadline.agent.lm`) wraps this generator
and any configured provider, with a recorded fallback to this one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from threadline.handoff.human import OPERATOR_CALL, OPERATOR_CALL_OPENING
from threadline.handoff.restate import Restatement, heard, restate_heard
from threadline.ledger.events import EventData, HandoffChannel
from threadline.projections.context_model import AgentContext, Entity, Handoff, ToolCall

MAX_CHARS = 520

# Entity kinds that identify the visitor rather than the matter: never spoken.
PRIVATE_KINDS = frozenset({"member_number", "policy_number", "name", "date", "phone"})
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
    "explicit_request_human": "let's talk it through",
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
_EXPLICIT = frozenset({"explicit_request", "explicit_request_human"})
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
    "explicit_request_human": "let's work through it here",
}


@dataclass(frozen=True, slots=True)
class Utterance:
    """A first utterance and the events recording how it was made (a model fallback)."""

    text: str
    events: tuple[tuple[str, EventData], ...] = ()


class UtteranceComposer(Protocol):
    """What `HandoffService` asks for the first utterance: the language-model port
    (`threadline.agent.lm.FallbackLM`, injected by the composition root) or, without one,
    `OfflineUtterances`."""

    def compose(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> Utterance:
        """The first thing the agent says on the new leg, with the events recording how it
        was made. `level` is the verification level the leg inherited (0 if none); `reason`
        why the handoff was offered; `channel` the new leg's channel (default: the latest
        handoff's, else webrtc); `inbound` the visitor called in rather than the agent
        dialling out (PSTN)."""
        ...


_SPACES = re.compile(r"\s+")


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


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


_DAY_PREPOSITION = re.compile(r"^(?:on|since|by|until|till|from|before|after|for)\s+", re.I)


def _spoken(entity: Entity) -> str:
    if entity.kind == "amount":
        currency, _, number = entity.value.partition(" ")
        symbol = {"USD": "$", "EUR": "€", "GBP": "£"}.get(currency)
        if symbol:
            whole, _, cents = number.partition(".")
            value = f"{symbol}{int(whole):,}" + (f".{cents}" if cents not in ("", "00") else "")
            return value
    if entity.kind == "day":  # "on Saturday" as written, without its preposition
        return _DAY_PREPOSITION.sub("", entity.text)
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


def fixed_voice_phrases() -> tuple[str, ...]:
    """Everything a spoken first utterance can say that is fixed wording, never derived from
    a conversation: the openings of the voice channels, the acknowledgements in front of
    them, and the operator call's opening (the TTS phrase cache keeps only these)."""
    return (
        *_ACK_BY_REASON.values(),
        _OPENING["webrtc"],
        _OPENING["pstn"],
        _OPENING_INBOUND,
        OPERATOR_CALL_OPENING,
    )


def opening(channel: HandoffChannel, *, inbound: bool = False) -> str:
    if channel == "pstn" and inbound:
        return _OPENING_INBOUND
    return _OPENING[channel]


# What the agent does next when the visitor's own words say what they want, whatever the
# domain: the first pattern that matches the latest request or open question wins. Domain
# packs (agent/packs/*.yaml) put their own steps in front of these.
DEFAULT_STEPS: tuple[tuple[str, str], ...] = (
    # "the cancelled yoga class" names a thing, not a cancellation to make.
    (r"\b(?:cancel(?!l?ed\b)\w*|terminat\w*|close\s+(?:my|the)\s+account)\b",
     "let's sort out the cancellation"),
    (r"\b(?:change|update|correct|move)\b.{0,40}\b(?:address|delivery)\b",
     "let me check whether the address can still be changed"),
    # "how much is delivery to Leeds" asks a price, not where a parcel is.
    (r"\b(?:shipped|dispatched|track\w*|where\s+is|arriv\w*|"
     r"deliver(?!y\s+(?:to|costs?|charges?|fees?|options?)\b)\w*)\b",
     "let me check where it is"),
    (r"\b(?:leak\w*|broken|broke|not\s+working|stopped\s+working|faulty|repair|fix|error\s+code|"
     r"won'?t\s+(?:start|turn\s+on|drain|spin))\b",
     "let's get the fault looked at"),
    (r"\b(?:return|exchange|send\s+(?:it|them)\s+back)\b", "let's get the return started"),
    (r"\b(?:refund|charged|charge|overcharg\w*|billed|bill|fee|invoice|payout|paid|deposit|money\s+back)\b",
     "let me go through the amounts with you"),
    (r"\b(?:book|reschedul\w*|appointment|slot|availability|move\s+my)\b",
     "let's find you a time"),
    (r"\b(?:quote|price|pricing|cost|discount|bundle|plan|upgrade|downgrade)\b",
     "let's go through the options and the numbers together"),
    (r"\b(?:password|log\s*in|locked\s+out|access|sign\s+in)\b", "let's get you back in"),
    (r"\b(?:claim|payout|estimate|adjuster)\b", "let me pull that up"),
)  # fmt: skip
# "I have today noted" tells the caller nothing: a relative day is named only in a sentence.
_RELATIVE_DAY = re.compile(r"(?:today|tonight|tomorrow|yesterday|now|this\s+\w+)", re.I)
_SPOKEN_CENTS = re.compile(r"([$€£]\d[\d,]*)\.00\b")
# Kinds worth naming if the restated sentences do not already carry them.
_FACT_KINDS = (
    "claim_number", "order_number", "reference", "serial", "amount", "address", "product", "day",
)  # fmt: skip


class OfflineUtterances:
    """Grounded and deterministic: the same context, level and reason always give the same
    sentence. `steps` are (pattern, next step) pairs tried before `DEFAULT_STEPS`."""

    def __init__(self, steps: Sequence[tuple[str, str]] = ()) -> None:
        self.steps = tuple(
            (re.compile(pattern, re.IGNORECASE), say) for pattern, say in (*steps, *DEFAULT_STEPS)
        )

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
        if reason == OPERATOR_CALL:
            return OPERATOR_CALL_OPENING  # a person called: they speak, not the AI
        channel = leg_channel(context, channel)
        parts = [_ACK_BY_REASON.get(reason or "", "") + opening(channel, inbound=inbound)]
        # What the visitor took back is neither restated nor noted; a long question is whole.
        context = heard(context)
        told = restate_heard(context)
        parts.extend(_grounding(context, told))
        status = self._status(context)
        if status:
            parts.append(f"I can see it's {status}.")
        if level > 0:
            parts.append("You're already verified, so you won't need to repeat your details.")
        else:
            parts.append("Before we go into your account, I'll need to confirm who you are.")
        parts.append(self._next(context, told, reason, channel, status))
        text = _SPOKEN_CENTS.sub(r"\1", _clean(" ".join(parts)))
        return text if len(text) <= MAX_CHARS else text[: MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"

    def compose(
        self,
        context: AgentContext,
        *,
        level: int,
        reason: str | None,
        channel: HandoffChannel | None = None,
        inbound: bool = False,
    ) -> Utterance:
        text = self.generate(context, level=level, reason=reason, channel=channel, inbound=inbound)
        return Utterance(text)

    @staticmethod
    def _status(context: AgentContext) -> str | None:
        entities = key_entities(context)
        refs = {e.value.upper() for e in entities if e.kind != "amount"}
        call = _latest_ok_lookup(context)
        return _status_of(call, refs) if call is not None else None

    def _next(
        self,
        context: AgentContext,
        told: Restatement,
        reason: str | None,
        channel: HandoffChannel,
        status: str | None,
    ) -> str:
        by_reason = _NEXT_BY_REASON.get(reason or "")
        if channel in _TEXT_CHANNELS:
            by_reason = _NEXT_BY_REASON_TEXT.get(reason or "", by_reason)
        latest = [
            *reversed(told.quoted),
            *reversed(told.open_questions),
            *reversed(told.asked_to),
            *reversed(told.said),
        ]
        if context.topic is not None:
            latest.append(context.topic.phrase)
        found: list[str] = []
        for text in latest:
            say = next((say for rx, say in self.steps if rx.search(text)), None)
            if say is not None and say not in found:
                found.append(say)
        by_words = ", and ".join(found[:2]) if found else None
        if by_words is None:
            by_words = _NEXT_BY_NOUN.get(context.topic.noun if context.topic else "")
        if by_reason and by_words and not status and reason not in _EXPLICIT:
            step = f"{by_words}, and {by_reason}"
        else:
            step = by_reason or by_words or "let's pick up where we left off"
        return step[0].upper() + step[1:] + "."


def _grounding(context: AgentContext, told: Restatement) -> list[str]:
    """The sentences that carry what the visitor asked, in their words, then any key fact
    (an id, an amount, a serial …) those sentences left out."""
    out: list[str] = []
    if told.said:
        said = "You said " + ", and ".join(told.said)
        out.append(said if said.endswith("?") else said + ".")  # "…, and asked: where is it?"
    asks = [f"to {a}" for a in told.asked_to] + list(told.open_questions)
    if asks:
        # "You asked me to change the address, and whether it has shipped."
        lead = "You asked me " if told.asked_to else "You asked "
        out.append(lead + ", and ".join(asks) + ".")
    for i, quoted in enumerate(told.quoted):
        # Not reportable by rule: "You asked: is the museum open on bank holidays?"
        also = " also" if asks or i else ""
        out.append(f"You{also} asked: {quoted}")
    if told.answered and len(out) < 2:
        answered = told.answered[-1]
        out.append(f"We already went over {answered}{'' if answered.endswith('?') else '.'}")
    if not out and context.topic is not None:
        out.append(f"I see you were asking about your {context.topic.phrase}.")
    said = " ".join(out).lower()
    missing = [
        e for e in context.entities_of(*_FACT_KINDS)  # type: ignore[arg-type]
        if e.text.lower() not in said and e.value.lower() not in said
        and _spoken(e).lower() not in said and not _RELATIVE_DAY.fullmatch(_spoken(e))
    ][:3]  # fmt: skip
    if missing:
        named = " and ".join(_spoken(e) for e in reversed(missing))
        out.append(f"I have {named} noted." if out else f"I see you mentioned {named}.")
    if not out:
        out.append("I have our whole chat in front of me.")
    return out
