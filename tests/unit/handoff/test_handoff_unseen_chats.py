"""The first utterance on topics nobody wrote a rule for, the way a visitor would meet it:
a short chat with the real offline agent, then "Switch to voice" through the real
`HandoffService` (request, redeem), and the sentence the voice agent opens with.

Each row names the key content words of the question the visitor actually asked (their
latest, corrected one) and the words of a question they took back. Every row is also held
to what any first utterance must do: restate in words from the chat (every word is the
chat's or fixed connective wording), acknowledge a verification already passed instead of
asking again (or ask, if there was none), claim no switch other than the one redeemed, and
read out no identity material."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.unit.handoff.handoff_helpers import CHAT_LEG, NOW, add, start_chat
from tests.unit.handoff.utterance_checks import Chat, first_utterance, problems
from threadline.agent.chat import ChatAgent
from threadline.agent.factory import build_agent
from threadline.agent.lm import build_lm
from threadline.agent.sqltools.sql import SqlToolBackend
from threadline.handoff.restate import heard
from threadline.ledger.events import HandoffChannel, MessagePosted
from threadline.ledger.store import Ledger, open_ledger
from threadline.projections.context import build_context

CHATS = [
    Chat("vet", ("hi, can I book a vet appointment for my cat Miso next Tuesday?",),
         ("vet", "appointment", "cat", "Tuesday")),
    Chat("bike-chain", ("my bike chain keeps slipping off the rear cog when I change gear, "
                        "how do I fix it?",), ("bike chain", "slipping", "fix")),
    Chat("visa", ("do I need a visa to visit Japan for two weeks on a Canadian passport?",),
         ("visa", "Japan", "Canadian passport")),
    Chat("tax-form", ("which tax form do I use to report freelance income, the 1099 or the W-2?",),
         ("tax form", "freelance income", "1099", "W-2")),
    Chat("parcel-pt", ("olá, my parcel não chegou, tracking LX123456789PT, where is it?",),
         ("parcel", "LX123456789PT", "where"), ("olá",)),
    Chat("other-account", ("what is the balance on my savings account?",
                           "actually I meant the other account, the checking one"),
         ("balance", "checking account"), ("savings",)),
    Chat("other-account-ref", ("why was I charged a fee on account ending 4421?",
                               "actually I meant the other account, the one ending 7788"),
         ("charged a fee", "7788"), ("4421",)),
    Chat("not-x-but-y", ("I want to add my wife to the travel policy",
                         "sorry, not my wife, my son"),
         ("add your son", "travel policy"), ("wife",)),
    Chat("wait-no-day", ("can I move my dentist appointment to Friday?", "wait, no, to Thursday"),
         ("dentist appointment", "Thursday"), ("Friday",)),
    Chat("never-mind", ("can you check if the blue sofa is in stock?",
                        "never mind that, how much is delivery to Leeds?"),
         ("delivery", "Leeds"), ("sofa", "never mind")),
    Chat("small-talk", ("how long does the warranty on the blender last?",
                        "lovely weather today by the way", "haha yes"),
         ("warranty", "blender"), ("weather",)),
    Chat("two-questions", ("can I change my seat on flight BA117? and is there wifi on board?",),
         ("seat", "BA117", "wifi")),
    Chat("typo", ("how do i resett my routr password",), ("resett", "routr password")),
    Chat("rambling", ("so I was at the garden centre on Saturday and bought a big terracotta pot "
                      "and some compost and then my neighbour said the tomato plants need more "
                      "light but I think they are overwatered, the leaves are yellow and curling, "
                      "what should I do about the yellow leaves on my tomato plants?",),
         ("yellow leaves", "tomato plants", "what you should do")),
    Chat("pharmacy", ("what time does the pharmacy close on Sunday?",),
         ("pharmacy", "close", "Sunday")),
    Chat("switch-request", ("is my gym membership frozen while I'm abroad?",
                            "can we do this on a call instead?"),
         ("gym membership", "frozen", "abroad"), ("on a call", "instead")),
    Chat("switch-phone", ("why was my electricity bill higher in October?",
                          "can I talk to someone on the phone"),
         ("electricity bill", "October"), ("talk to someone", "phone")),
    Chat("switch-first", ("can I switch to voice?", "I want to ask about my pension contributions"),
         ("pension contributions",), ("switch to voice?",)),
    Chat("ring-me", ("where is my new kettle?", "easier to talk, ring me"),
         ("kettle",), ("ring", "easier")),
    Chat("call-about", ("can you call me about my council tax bill?",),
         ("council tax bill",), ("call you",)),
    Chat("sink", ("the kitchen sink is blocked and the water won't drain",),
         ("kitchen sink", "blocked", "drain")),
    Chat("library", ("can I renew my library books online?",), ("renew", "library books")),
    Chat("enrolment", ("when does enrolment open for the spring semester?",),
         ("enrolment", "spring semester")),
    Chat("brakes", ("my car makes a grinding noise when braking, is it safe to drive?",),
         ("grinding noise", "braking", "safe to drive")),
    Chat("lost-card", ("I lost my debit card yesterday, can you block it?",),
         ("debit card", "block")),
    Chat("museum", ("is the museum open on bank holidays?", "thanks!"),
         ("museum", "bank holidays")),
    Chat("shouting", ("WHY HAS MY REFUND NOT ARRIVED YET",), ("refund", "arrived")),
    Chat("chocolate", ("my dog ate chocolate 😱 what do I do",), ("dog ate chocolate",)),
    Chat("hotel", ("bonjour, the hotel room in Lyon has no hot water, can someone fix it?",),
         ("hotel room", "Lyon", "hot water"), ("bonjour",)),
    Chat("boleto", ("oi, I paid the boleto twice for invoice 5521, can I get the money back?",),
         ("boleto", "twice", "5521", "money back")),
    Chat("hiking-boot", ("does the hiking boot come in size 44?", "also my sister says hi"),
         ("hiking boot", "size 44"), ("sister",)),
    Chat("mattress", ("wen will my new mattres be deliverd",), ("mattres", "deliverd")),
    Chat("broadband", ("I'm moving house next month. Can I transfer my broadband to the new "
                       "address? Also do I need a new router?",),
         ("broadband", "new address", "router")),
    Chat("passport", ("hello", "hi there",
                      "I need to know if my passport renewal has been processed"),
         ("passport renewal", "processed")),
    Chat("already-answered", ("can I get a refund for the cancelled yoga class?",),
         ("refund", "yoga class")),
    Chat("scholarship", ("what's the deadline for the scholarship application?",
                         "and can I submit it by post?"),
         ("deadline", "scholarship application", "submit it by post")),
    Chat("name-and-email", ("my name is Ana Souza and my email is ana.souza@example.com, where is "
                            "my refund for order 7731?",), ("refund", "7731"),
         ("Ana", "Souza", "example.com")),
    Chat("call-me-on", ("call me on 07700 900123 about my broken fridge",),
         ("broken fridge",), ("07700", "900123")),
    Chat("plan-switch", ("can I switch my plan to the annual one?",),
         ("switch your plan", "annual")),  # a switch of plan, not of channel: restated
    Chat("pause-instead", ("how do I cancel my magazine subscription?",
                           "actually, how do I pause it instead?"),
         ("pause your magazine subscription",), ("cancel", "instead")),
    Chat("renew-it", ("how do I update the address on my driving licence?",
                      "actually never mind, how do I renew it?"),
         ("renew your driving licence",), ("update", "never mind")),
    Chat("instead-of", ("I need to change the name on my flight ticket", "it's spelled wrong",
                        "Jonh instead of John"), ("change the name", "flight ticket")),
    Chat("anyone-there", ("hello?", "anyone there?",
                          "how do I reset the thermostat to factory settings?"),
         ("reset the thermostat", "factory settings"), ("anyone",)),
    Chat("guitar-flight", ("can I bring my guitar as hand luggage on flight EZ2201?",
                           "sorry, I meant flight EZ2210"), ("guitar", "hand luggage", "EZ2210"),
         ("EZ2201",)),
    Chat("found-it", ("where can I find my P60?", "never mind, found it",
                      "but how do I claim the tax rebate?"), ("tax rebate",), ("P60", "found")),
    Chat("date-of-birth", ("my date of birth is 12/03/1984, can you check my pension forecast?",),
         ("pension forecast",), ("1984", "12/03")),
    Chat("human", ("my seat reservation on train 9O44 disappeared", "I want to talk to a human"),
         ("seat reservation", "9O44"), ("human",)),
    Chat("about-fragment", ("hi I'm looking for information",
                            "about the opening hours of the recycling centre on Sundays"),
         ("opening hours", "recycling centre")),
    Chat("announced", ("i have a question", "is the summer camp for kids aged 6 to 12?"),
         ("summer camp", "6 to 12"), ("have a question",)),
    Chat("two-corrections", ("can I move my hair appointment to Friday?", "no, Thursday",
                             "sorry, Wednesday"), ("hair appointment", "Wednesday"),
         ("Friday", "Thursday")),
    Chat("the-black-one", ("is the red kettle back in stock?", "oops, the black one"),
         ("black kettle", "in stock"), ("red",)),
    Chat("correction-flight", ("what's the weight limit for checked bags on TP1320?",
                               "correction: TP1321"), ("weight limit", "TP1321"), ("TP1320",)),
    Chat("correction-date", ("can I get a refund for my gym class on 3 December?",
                             "actually I meant 5 December"), ("gym class", "5 December"),
         ("3 December",)),
    Chat("no-wait-branch", ("do you have vegan options at the Leeds branch?",
                            "no wait, the York branch"), ("vegan options", "York"), ("Leeds",)),
    Chat("from-not", ("where is my parcel from Lisbon?", "sorry I meant from Porto, not Lisbon"),
         ("parcel", "from Porto"), ("Lisbon", "from from")),
    Chat("personal-one", ("can you send the invoice to my work email?",
                          "actually I meant my personal one"), ("invoice", "personal email"),
         ("work",)),
    Chat("make-that", ("I want to book a table for 4 on Saturday", "make that 6 people"),
         ("table for 6", "Saturday"), ("for 4", "make that")),
    Chat("i-mean-preposition", ("what's the fee for withdrawing cash abroad?",
                                "no, I mean for card payments abroad"),
         ("fee", "card payments abroad"), ("withdrawing", "for for")),
    Chat("typo-word", ("is the gallery free on Mondays?", "sorry, typo, Sundays"),
         ("gallery", "Sundays"), ("Mondays", "typo")),
    Chat("size", ("can I swap my blue trainers for a size 9?", "actually a size 10"),
         ("blue trainers", "size 10"), ("size 9",)),
    Chat("verified-in-chat", ("hi, I need help with my account",
                              "my date of birth is 1984-03-12 and my member number is MBR-100234",
                              "can I get a large-print copy of my hearing aid letter?"),
         ("large-print copy", "hearing aid letter"), ("date of birth",), cookie=False),
    Chat("verified-then-correct", ("my date of birth is 12 March 1984",
                                   "and the policy number is POL-558812",
                                   "is the dental cover valid in Spain?",
                                   "sorry, I meant in Portugal"),
         ("dental cover", "Portugal"), ("Spain", "POL-558812"), cookie=False),
    Chat("link", ("https://example.com/order/123 this link gives a 404, where do I download my "
                  "receipt?",),
         ("link gives a 404", "download your receipt"), ("https", "example")),
    Chat("list-then-question", ("I need: 1) a copy of my lease 2) the deposit certificate. where "
                                "can I get them?",),
         ("copy of your lease", "deposit certificate", "where you can get them")),
    Chat("follow-on", ("Is there a discount for students? I'm at Leeds uni", "and for over 65s?"),
         ("discount for students", "for over 65s")),
    Chat("thanks-earlier", ("thanks for the help earlier!",
                            "one more thing: how do I register my bike for the cycle scheme?"),
         ("register your bike", "cycle scheme"), ("thanks for the help", "one more thing")),
    Chat("person-about", ("can I talk to someone about my late fee",
                          "it's $35 on my card statement"), ("late fee", "$35"), ("someone",)),
    # Questions a person already answered in the chat: still restated, as gone over.
    Chat("answered-pharmacy", ("what time does the pharmacy close on Sunday?",),
         ("already went over", "pharmacy closes on Sunday"),
         operator=((0, "The pharmacy closes at 4pm on Sundays."),)),
    Chat("answered-then-new", ("is the museum open on bank holidays?",
                               "ok thanks, how much is a ticket?"),
         ("how much is a ticket", "museum open on bank holidays"), ("thanks,", "ok thanks"),
         operator=((0, "The museum is open on bank holidays from 10am."),)),
    Chat("unverified-visa", ("how long does a Schengen visa take to process?",),
         ("Schengen visa", "process"), verified=False),
    Chat("unverified-correction", ("when is the bin collection on Elm Road?",
                                   "sorry, I meant Oak Road"),
         ("bin collection", "Oak Road"), ("Elm",), verified=False),
]  # fmt: skip


@pytest.fixture
def ledger() -> Iterator[Ledger]:
    store = open_ledger("memory://")
    yield store
    store.close()


def test_the_table_is_wide_enough() -> None:
    assert len(CHATS) >= 30
    assert len({c.id for c in CHATS}) == len(CHATS)
    assert sum(1 for c in CHATS if c.stale) >= 10


@pytest.mark.parametrize("chat", CHATS, ids=[c.id for c in CHATS])
def test_the_first_utterance_restates_the_question_really_asked(
    ledger: Ledger, tools: SqlToolBackend, chat: Chat
) -> None:
    utterance, had = first_utterance(ledger, tools, chat)
    assert problems(chat, utterance, had) == [], utterance


@pytest.mark.parametrize("channel", ["pstn", "sms"])
@pytest.mark.parametrize("chat", [c for c in CHATS if c.stale][:4], ids=lambda c: c.id)
def test_other_channels_claim_only_their_own_switch(
    ledger: Ledger, tools: SqlToolBackend, chat: Chat, channel: HandoffChannel
) -> None:
    utterance, had = first_utterance(ledger, tools, chat, channel)
    assert problems(chat, utterance, had, channel) == [], utterance


def test_the_checks_can_fail() -> None:
    """A stale restatement, a re-verification, an invented word and another channel's
    opening are each caught."""
    chat = next(c for c in CHATS if c.id == "other-account")
    had = " ".join(chat.turns)
    stale = (
        "Thanks for switching to voice. You asked what the balance is on your savings account. "
        "You're already verified, so you won't need to repeat your details."
    )
    assert problems(chat, stale, had) == ["missing 'checking account'", "stale 'savings'"]
    worse = stale.replace(
        "You're already verified, so you won't need to repeat your details.",
        "Before we go into your account, I'll need to confirm who you are.",
    )
    assert "re-verifies a verified visitor" in problems(chat, worse, had)
    invented = stale.replace("balance", "overdraft limit")
    assert any("overdraft" in p for p in problems(chat, invented, had))
    assert "claims a pstn switch" in problems(chat, "Thanks for taking my call. " + stale, had)


def test_reading_the_chat_twice_changes_nothing(ledger: Ledger, tools: SqlToolBackend) -> None:
    """`heard` is applied by the first utterance and again by `restate`: a second reading
    must not correct, cut or rewrite anything the first one did not."""
    agent = ChatAgent(ledger, build_agent(tools, clock=lambda: NOW))
    for chat in CHATS:
        start_chat(ledger, chat.id)
        for text in chat.turns:
            agent.visitor_turn(chat.id, text, leg_id=CHAT_LEG)
        once = heard(build_context(ledger.read(chat.id)))
        assert heard(once) == once, chat.id


def test_the_operator_summary_keeps_a_quoted_question_open(ledger: Ledger) -> None:
    start_chat(ledger, "S")
    for text in ("is the museum open on bank holidays?", "actually I meant on Sundays"):
        add(ledger, "S", MessagePosted(role="visitor", text=text))
    summary = build_lm().offline.handoff_summary(build_context(ledger.read("S")), reason=None)
    assert "Open: is the museum open on Sundays." in summary
    assert "bank holidays" not in summary
