"""Checks any first utterance must pass, and the real path that makes one: a chat with the
offline agent, then request and redeem through `HandoffService`. Shared by the unseen-chat
table and the property tests."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, add, start_chat
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.agent.lm import build_lm
from threadline.agent.tools import ToolBackend
from threadline.handoff import first_utterance as fu
from threadline.handoff.pronouns import AGREE, SWAP
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.events import (
    HandoffChannel,
    IdentityClaimed,
    IdentityVerified,
    MessagePosted,
)
from threadline.ledger.store import Ledger

SIGNER = Signer(b"u" * 32, "handoff")
SUBJECT = "MBR-100234"  # the verified visitor's member number: never in a chat row
VERIFIED = "You're already verified"
CHALLENGE = "I'll need to confirm who you are"


@dataclass(frozen=True, slots=True)
class Chat:
    id: str
    turns: tuple[str, ...]
    must: tuple[str, ...]  # key words of the question really asked
    stale: tuple[str, ...] = ()  # words only a question taken back had
    verified: bool = True
    cookie: bool = True  # verified by the widget's session; False: by answering in the chat
    # (after which visitor turn, what an operator wrote): answers the offline agent can't give
    operator: tuple[tuple[int, str], ...] = ()


# Wording the generator adds itself: openings, verification, next steps, connectives.
_FIXED = " ".join(
    [
        *fu._OPENING.values(),
        fu._OPENING_INBOUND,
        *fu._ACK_BY_REASON.values(),
        *fu._NEXT_BY_REASON.values(),
        *fu._NEXT_BY_REASON_TEXT.values(),
        *fu._NEXT_BY_NOUN.values(),
        *(say for _, say in fu.DEFAULT_STEPS),
        *SWAP.values(),
        *AGREE.values(),
        "You're already verified, so you won't need to repeat your details.",
        "Before we go into your account, I'll need to confirm who you are.",
        "You said, and asked me to whether; You also asked: We already went over your question",
        "I have noted. I see you mentioned I can see it's. I have our whole chat in front of me",
        "I see you were asking about your. let's pick up where we left off",
    ]
)
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?")


def words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


FIXED_WORDS = words(_FIXED)


def _from_chat(word: str, chat: set[str]) -> bool:
    """The word is the chat's, or the chat's word with the -s an agreement adds
    ("does the pharmacy close" → "the pharmacy closes")."""
    if word in chat or word in FIXED_WORDS:
        return True
    stems = {word[:-1], word[:-2], word[:-3] + "y"} if len(word) > 3 else set()
    return any(s in chat for s in stems)


def problems(
    chat: Chat, utterance: str, chat_text: str, channel: HandoffChannel = "webrtc"
) -> list[str]:
    """Everything wrong with `utterance` as the first utterance of `chat` (empty: none)."""
    found: list[str] = []
    low = utterance.lower()
    found += [f"missing {w!r}" for w in chat.must if w.lower() not in low]
    found += [f"stale {w!r}" for w in chat.stale if w.lower() in low]
    invented = sorted(w for w in words(utterance) if not _from_chat(w, words(chat_text)))
    if invented:
        found.append(f"words not in the chat: {invented}")
    if chat.verified and (VERIFIED not in utterance or CHALLENGE in utterance):
        found.append("re-verifies a verified visitor")
    if not chat.verified and (CHALLENGE not in utterance or VERIFIED in utterance):
        found.append("claims a verification that never happened")
    if SUBJECT in utterance or "100234" in utterance or "1984" in utterance:
        found.append("reads out the member number")
    others = {c: fu.opening(c) for c in fu._OPENING if c != channel}
    found += [f"claims a {c} switch" for c, text in others.items() if text in utterance]
    if not utterance.startswith(fu.opening(channel)):
        found.append(f"does not open for {channel}")
    return found


def first_utterance(
    ledger: Ledger, tools: ToolBackend, chat: Chat, channel: HandoffChannel = "webrtc"
) -> tuple[str, str]:
    """(the utterance the redeemed leg opens with, everything the chat had before it)."""
    cid = chat.id
    start_chat(ledger, cid)
    if chat.verified and chat.cookie:  # a signed-in visitor: the widget's session cookie
        add(ledger, cid, IdentityClaimed(method="cookie", subject=SUBJECT))
        add(ledger, cid, IdentityVerified(method="cookie", level=2, subject=SUBJECT))
    # The composition root's wiring: one language model (offline, the default) for the chat
    # agent and for the handoff service's first utterances.
    lm = build_lm(clock=lambda: NOW)
    agent = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW, lm=lm))
    for i, text in enumerate(chat.turns):
        agent.visitor_turn(cid, text, leg_id=CHAT_LEG)
        for _, said in (o for o in chat.operator if o[0] == i):
            add(ledger, cid, MessagePosted(role="operator", text=said))
    had = " ".join(e.data.model_dump_json() for e in ledger.read(cid))
    had = had.replace(SUBJECT, "").replace("1984", "")  # identity material: never spoken
    service = HandoffService(ledger, signer=SIGNER, utterances=lm)
    ticket = service.request_handoff(cid, channel, leg_id=CHAT_LEG)
    grant = service.redeem(ticket.token, "pc-1")
    assert (grant.level > 0) is chat.verified
    return grant.first_utterance, had
