"""The offline deterministic model: rules over the turn and the agent context, no network,
no key. It greets, verifies identity (date of birth + member or policy number), looks up
claims, policies and appointments, books slots, prices plans, and answers escalation
signals; the same inputs always give the same actions and words."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from threadline.agent import intents as nlu
from threadline.agent import packs as domain
from threadline.agent import render
from threadline.agent.core import person_next
from threadline.agent.model import Action, CallTool, Outcome, Reply, TurnState, Verify
from threadline.agent.persona import AGENT_NAME, COMPANY
from threadline.handoff import signals as sig

ACCOUNT_INTENTS = ("claim", "policy", "appointments", "schedule")
# What a verified visitor most likely wants next, by the conversation's topic noun.
_INTENT_BY_NOUN: dict[str, nlu.Intent] = {
    "claim": "claim",
    "reimbursement": "claim",
    "refund": "claim",
    "policy": "policy",
    "plan": "policy",
    "coverage": "policy",
    "deductible": "policy",
    "premium": "policy",
    "membership": "policy",
    "appointment": "schedule",
    "booking": "schedule",
    "quote": "quote",
}
# A spoken authorisation statement ("I authorise my husband to ...").
_AUTHORISING = re.compile(r"\bI\s+(?:hereby\s+|do\s+)?(?:authori[sz]e|consent)\b", re.I)
ASK_CREDENTIALS = (
    "First I need to verify your identity: please tell me your date of birth and your "
    "member or policy number."
)


VOICE_PROMISE = "Of course, I can carry on with you on a voice call."


def _last_agent_reply(state: TurnState) -> str:
    said = [t.text for t in state.context.recent_turns if t.role == "agent"]
    return said[-1] if said else ""


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0].lower()


def _is_question(text: str) -> bool:
    return "?" in text or bool(
        re.match(
            r"^\s*(?:how|what|when|where|why|which|who|can|could|do|does|is|are|will)\b", text, re.I
        )
    )


class OfflineModel:
    name = "offline"

    def __init__(
        self,
        packs: Sequence[str] | None = None,
        tenant_packs: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        from threadline.handoff.settings import HandoffSettings

        names = packs if packs is not None else HandoffSettings().pack_names()
        self.packs = domain.load_all(names)
        # `THREADLINE_AGENT_TENANT_PACKS`: a tenant listed here only ever gets its own packs
        # (plus general), so acme's dishwasher chat can never be matched to insurance.
        self.tenant_packs = {t: domain.load_all(n) for t, n in (tenant_packs or {}).items()}

    def packs_of(self, tenant: str | None) -> tuple[domain.Pack, ...]:
        """The packs enabled for `tenant` (the conversation's, from ConversationStarted)."""
        return self.tenant_packs.get(tenant, self.packs) if tenant is not None else self.packs

    def pack_for(self, state: TurnState) -> domain.Pack:
        packs = self.packs_of(state.context.tenant)
        return domain.choose(packs, state.text, state.earlier_visitor_turns, state.pack_scores)

    def step(self, state: TurnState) -> Action:
        pack = self.pack_for(state)
        if not state.steps and "lookup" not in pack.tools:
            # A domain the tenant's tools don't serve: explain, never another pack's menu.
            return self._outside(state, pack)
        if not state.steps:
            return self._first(state)
        return self._after(state, state.steps[-1])

    # -- a domain without tools ------------------------------------------------------------
    def _outside(self, state: TurnState, pack: domain.Pack) -> Action:
        text = state.text
        kinds = {s.kind for s in state.signals}
        found = nlu.intents(text)
        prefix = self._mood(state)
        if "compliance_step" in kinds or kinds & sig.EXPLICIT_KINDS or "voice" in found:
            return self._act(found, state, prefix)
        intent = pack.intent(text)
        if intent is None and "greeting" in found and len(text.split()) <= 4:
            return Reply(f"Hi, I'm {AGENT_NAME}. I can {pack.can}. What can I do for you?")
        if intent is None and "thanks" in found and not _is_question(text):
            return Reply("You're welcome. Is there anything else I can help with?")
        about = "" if pack.name == domain.GENERAL else f" about your {pack.topic}"
        menu = re.search(r"\bwhat\s+(?:can|do)\s+(?:you|u)\s+(?:do|help|offer)", text, re.I)
        lead = intent.reply if intent is not None else f"Thanks, I've noted that{about}."
        body = (
            f" In this chat I can {pack.can}, but I can't {pack.cannot}, so a person from our "
            "team should pick this up."
        )
        earlier = " ".join(t.text for t in state.context.recent_turns if t.role == "agent")
        said_menu = "In this chat I can" in earlier and not menu
        options = (
            f"{prefix}{'' if menu else lead}{'' if said_menu else body}".strip(),
            f"{prefix}I've added that to the note for our team; a colleague can take it over, "
            "in this chat or on a call.",
            "Understood. Is there anything else the team should know before a colleague "
            "picks this up?",
        )
        last = _last_agent_reply(state)
        reply = next(
            (o for o in options if _first_sentence(o) != _first_sentence(last)), options[-1]
        )
        return Reply(reply, offer="out_of_scope")

    # -- first action of a turn --------------------------------------------------------------
    def _first(self, state: TurnState) -> Action:
        if state.member is None and not state.verification_locked:
            creds = self._credentials(state)
            if creds.identifier and creds.date_of_birth:
                return Verify(creds.identifier, creds.date_of_birth)
            if creds.identifier or creds.date_of_birth:
                missing = "date of birth" if creds.identifier else "member or policy number"
                return Reply(f"Thanks. Could you also give me your {missing}?")
        return self._act(nlu.intents_besides_credentials(state.text), state, self._mood(state))

    def _credentials(self, state: TurnState) -> nlu.Credentials:
        now = nlu.credentials(state.text)
        if not (now.identifier or now.date_of_birth) or (now.identifier and now.date_of_birth):
            return now
        identifier, dob = now.identifier, now.date_of_birth
        for earlier in reversed(state.earlier_visitor_turns[-4:]):
            before = nlu.credentials(earlier)
            identifier = identifier or before.identifier
            dob = dob or before.date_of_birth
        return nlu.Credentials(identifier, dob)

    def _mood(self, state: TurnState) -> str:
        kinds = {s.kind for s in state.signals}
        return "I'm sorry for the trouble. " if "frustration_spike" in kinds else ""

    def _act(self, found: list[nlu.Intent], state: TurnState, prefix: str = "") -> Action:
        text = state.text
        kinds = {s.kind for s in state.signals}
        on_voice = state.channel in ("webrtc", "pstn")
        if on_voice and _AUTHORISING.search(text):
            return Reply(
                "Thank you. Your authorisation is on this recorded call, so it's now on your file."
            )
        if "compliance_step" in kinds:
            if on_voice:
                return Reply(
                    prefix + "Of course. Please say, in your own words, who you authorise and "
                    "for what; this call is recorded, so that puts it on your file."
                )
            return Reply(
                prefix + "An authorisation like that has to be given in your own voice, and we "
                "record it for your file."
            )
        if sig.asks_for_person(state.signals) is not None:
            # A person, not this agent by voice: say what happens next (HumanDesk, when
            # wired, answers with the queue place or a callback instead).
            return Reply(prefix + person_next(state.channel), offer="explicit_request_human")
        if found == ["unknown"] and state.member is not None and state.context.topic is not None:
            # A follow-up ("why is it still pending?") continues the conversation's topic.
            pending = _INTENT_BY_NOUN.get(state.context.topic.noun)
            if pending is not None:
                found = [pending]
        if "quote" in found:
            plans = nlu.plans_of(text)
            if plans:
                return self._quote(state, plans[0])
            return Reply(prefix + "Which plan would you like me to price, and with any riders?")
        account = next((i for i in found if i in ACCOUNT_INTENTS), None)
        if account is not None:
            if state.member is None:
                return self._need_identity(state, prefix)
            return self._account(account, state)
        if "voice" in found or kinds & sig.EXPLICIT_KINDS:
            return Reply(prefix + VOICE_PROMISE, offer="explicit_request")
        if "complex_pricing" in kinds:
            return Reply(prefix + "Happy to go through the plans and prices with you.")
        if "greeting" in found:
            topic = state.context.topic
            if topic is not None and topic.position == state.turn_position:
                return self._act([_INTENT_BY_NOUN.get(topic.noun, "unknown")], state, prefix)
            return Reply(
                f"Hi, I'm {AGENT_NAME} from {COMPANY}. I can help with claims, policies, "
                "appointments and quotes. What can I do for you?"
            )
        if "thanks" in found and not _is_question(text):
            return Reply("You're welcome. Is there anything else I can help with?")
        menu = (
            prefix + "I can help with claims, your policy, appointments and quotes. "
            "Could you tell me a bit more about what you need?"
        )
        if _first_sentence(menu) != _first_sentence(_last_agent_reply(state)):
            return Reply(menu)
        return Reply(
            prefix + "Sorry, I don't think I can do that here. A colleague can help, in this "
            "chat or on a call.",
            offer="out_of_scope",
        )

    def _need_identity(self, state: TurnState, prefix: str) -> Reply:
        if state.verification_locked:
            return Reply(
                prefix + "I can't verify you in chat after several attempts, so I can't open "
                "your account here; we can do it on a voice call instead."
            )
        topic = state.context.topic
        about = f" with your {topic.phrase}" if topic is not None else ""
        return Reply(f"{prefix}I can help{about}. {ASK_CREDENTIALS}")

    def _account(self, intent: nlu.Intent, state: TurnState) -> CallTool:
        text = state.text
        if intent == "claim":
            args: dict[str, Any] = {"kind": "claim"}
            ref = nlu.reference_of(text, ("claim_number", "reference"))
            month = nlu.month_of(text)
            if not ref and not month:
                ref = self._claim_in_focus(state)
                month = None if ref else self._context_month(state)
            if ref:
                args["reference"] = ref
            elif month:
                args["month"] = month
            return CallTool("lookup", args)
        if intent == "policy":
            return CallTool("lookup", {"kind": "policy"})
        if intent == "appointments" and not nlu.intents(text).count("schedule"):
            return CallTool("lookup", {"kind": "appointment"})
        slot = nlu.slot_of(text)
        day = nlu.day_of(text, state.today)
        if slot or day or any(w in text.lower() for w in ("earliest", "first", "next free")):
            args = {"topic": self._topic(state)}
            if slot:
                args["slot_id"] = slot
            elif day:
                args["date"] = day
            return CallTool("schedule", args)
        return CallTool("lookup", {"kind": "slot"})

    def _claim_in_focus(self, state: TurnState) -> str | None:
        """The claim the last claim lookup settled on, if it found exactly one."""
        for call in reversed(state.context.tool_calls):
            if call.name == "lookup" and call.status == "ok":
                if call.arguments.get("kind") != "claim":
                    continue
                result = call.result
                if isinstance(result, list) and len(result) == 1 and isinstance(result[0], dict):
                    ref = result[0].get("reference")
                    return ref if isinstance(ref, str) else None
                return None
        return None

    def _context_month(self, state: TurnState) -> int | None:
        topic = state.context.topic
        if topic is not None:
            month = nlu.month_of(topic.phrase)
            if month:
                return month
        latest = next(iter(state.context.entities_of("month")), None)
        return nlu.month_of(f"in {latest.value}") if latest is not None else None

    def _topic(self, state: TurnState) -> str:
        topic = state.context.topic
        return f"about your {topic.phrase}"[:120] if topic is not None else "follow-up call"

    def _quote(self, state: TurnState, plan: str) -> CallTool:
        args: dict[str, Any] = {"plan": plan}
        riders = nlu.riders_of(state.text)
        if riders:
            args["riders"] = riders
        deductible = nlu.deductible_of(state.text)
        if deductible is not None:
            args["deductible"] = deductible
        return CallTool("quote", args)

    # -- after an action ---------------------------------------------------------------------
    def _after(self, state: TurnState, last: Outcome) -> Action:
        verified_now = any(
            isinstance(o.action, Verify) and o.verified for o in state.steps
        )  # fmt: skip
        prefix = "Thanks, you're verified. " if verified_now else ""
        if isinstance(last.action, Verify):
            if not last.verified:
                if state.verification_locked:
                    return self._need_identity(state, "Sorry, those details don't match. ")
                return Reply(
                    "Sorry, those details don't match our records. Please check your date of "
                    "birth and your member or policy number."
                )
            found = [
                i
                for i in nlu.intents_besides_credentials(state.text)
                if i not in ("greeting", "thanks")
            ]
            if found in ([], ["unknown"]):
                topic = state.context.topic
                pending = _INTENT_BY_NOUN.get(topic.noun) if topic is not None else None
                if pending is None:
                    return Reply(prefix + "How can I help you today?")
                found = [pending]
            return self._act(found, state, prefix)
        action = last.action
        assert isinstance(action, CallTool)
        if last.error is not None:
            return Reply(prefix + render.tool_failed(action.name, last.error))
        if action.name == "quote":
            plans = nlu.plans_of(state.text)
            priced = [o for o in state.steps if isinstance(o.action, CallTool)]
            if len(priced) < len(plans) and len(state.steps) < 3:
                return self._quote(state, plans[len(priced)])
            results = [o.result for o in priced if o.error is None]
            return Reply(prefix + render.quotes(results))
        if action.name == "schedule":
            return Reply(prefix + render.booked(last.result))
        kind = action.arguments.get("kind")
        result = last.result if isinstance(last.result, list) else []
        if kind == "claim":
            month = action.arguments.get("month")
            ref = action.arguments.get("reference")
            return Reply(prefix + render.claims(result, month, ref))
        if kind == "policy":
            return Reply(prefix + render.policies(result))
        if kind == "appointment":
            return Reply(prefix + render.appointments(result))
        return Reply(prefix + render.slots(result))
