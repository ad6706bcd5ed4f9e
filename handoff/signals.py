"""Escalation signals: does this conversation now need a voice (or human) channel?

Four kinds, each scored 0..1 from the new visitor turn plus what the conversation already
shows (earlier visitor turns, failed verifications and tools):

- ``explicit_request`` — the visitor asks for a person, a call or voice ("can I talk to
  someone", "call me"). A direct request scores 0.95; a softer mention of the phone 0.65.
- ``compliance_step`` — the next step needs consent or an authorisation that is taken
  verbally and recorded (HIPAA authorisation 0.9, recorded/verbal consent 0.9, consent or
  authorisation 0.75, power of attorney / release of information 0.8, privacy/legal 0.45).
- ``complex_pricing`` — a quote that is hard to do in text: plan comparisons, riders,
  several amounts. Additive: comparison 0.35, two or more plans named 0.2, each rider/add-on
  term 0.2 (max 0.4), quote/premium/deductible wording 0.15, each amount 0.1 (max 0.3).
- ``frustration_spike`` — additive: each angry word ("furious", "unacceptable") 0.4 (max
  0.6), each other negative phrase 0.25 (max 0.5), saying it is a repeat ("the third time",
  "how many times") 0.3, "nobody helps" 0.25, shouting in capitals 0.3 (one shouted word
  0.1), repeating an earlier question 0.35, each recent failure (verification or tool) 0.15
  (max 0.3), three or more "!"/"?" in a row 0.1.
- ``complex_pricing`` also adds: a bundle/multi-car/multi-line 0.3, each discount term 0.15
  (max 0.3), several parties ("three drivers", "2 lines") 0.25, payment terms 0.15.
- ``explicit_request_human`` — a request for a *person* (`person_request.py`, in any words,
  0.95; a bare mention of a human or operator 0.8), kept apart so the operator desk (issue
  16) can take it; `asks_for_person` finds it.

A kind is *detected* (appended as EscalationSignalDetected) when its score is at least
``DETECTION_FLOOR``; the agent *offers* a handoff when a detected score reaches the
threshold in `HandoffSettings.escalation_threshold` (default 0.6). Pure and deterministic:
the same inputs give the same signals, so replays agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from threadline.handoff.person_request import person_request
from threadline.ledger.events import EscalationSignalDetected, SignalKind

DETECTION_FLOOR = 0.3
DEFAULT_THRESHOLD = 0.6
REPEAT_SIMILARITY = 0.7


@dataclass(frozen=True, slots=True)
class Signal:
    kind: SignalKind
    score: float
    evidence: str

    def to_event(self) -> EscalationSignalDetected:
        return EscalationSignalDetected(
            signal=self.kind, score=round(self.score, 3), evidence=self.evidence[:2000]
        )


@dataclass(frozen=True, slots=True)
class Rule:
    pattern: re.Pattern[str]
    score: float
    label: str


def _rx(text: str) -> re.Pattern[str]:
    return re.compile(text, re.IGNORECASE)


_EXPLICIT: tuple[Rule, ...] = (
    Rule(
        _rx(
            r"\b(?:talk|speak|chat)\s+(?:to|with)\s+(?:a\s+|an\s+|the\s+|your\s+|some\s+)?"
            r"(?:someone|somebody|person|human|agent|representative|rep|advisor|adviser|"
            r"operator|manager|supervisor|real\s+person|live\s+agent|actual\s+person)\b"
        ),
        0.95,
        "asks to talk to a person",
    ),
    Rule(
        _rx(
            # "call me Sam" introduces a name; "call me" alone asks for a call.
            r"\b(?:call|phone|ring)\s+me\b(?!\s+(?-i:[A-Z][a-z]))|\bgive\s+me\s+a\s+(?:call|ring)\b"
            r"|\bcan\s+(?:you|someone|somebody)\s+(?:call|phone|ring)\b"
        ),
        0.95,
        "asks to be called",
    ),
    Rule(
        _rx(
            r"\b(?:switch|move|go|change)\s+to\s+(?:voice|a\s+call|the\s+phone|phone)\b"
            r"|\b(?:voice|phone)\s+call\b|\bcan\s+(?:we|i)\s+(?:talk|speak)\b"
            # "can we do this on a call instead", "carry on over the phone": the visitor
            # asks to continue by voice (not "I was on a call with you yesterday").
            r"|\b(?:do|continue|carry\s+on|finish|sort)\s+(?:this|it|that)?\s*(?:on|over|by)"
            r"\s+(?:a\s+|the\s+)?(?:call|phone)\b"
        ),
        0.9,
        "asks for a voice call",
    ),
    Rule(
        _rx(r"\b(?:human|real\s+person|representative|operator)\b"),
        0.8,
        "mentions a person",
    ),
    Rule(_rx(r"\b(?:on\s+the\s+phone|by\s+phone|over\s+the\s+phone)\b"), 0.65, "mentions phone"),
)

_COMPLIANCE: tuple[Rule, ...] = (
    Rule(_rx(r"\bhipaa\b"), 0.9, "HIPAA"),
    Rule(_rx(r"\b(?:recorded|verbal|spoken|oral)\s+(?:consent|authori[sz]ation)\b"), 0.9,
         "recorded verbal consent"),
    Rule(_rx(r"\b(?:power\s+of\s+attorney|release\s+of\s+information|proxy)\b"), 0.8,
         "acting for someone else"),
    Rule(_rx(r"\b(?:consent|authori[sz]ation|authori[sz]e|permission)\b"), 0.75,
         "consent or authorisation"),
    Rule(_rx(r"\b(?:privacy|legal|lawyer|attorney|disclos\w+)\b"), 0.45, "privacy or legal"),
)  # fmt: skip

_COMPARE = _rx(
    r"\b(?:compare|comparison|versus|vs\.?|difference\s+between|better\s+deal|which\s+(?:one|plan)"
    r"|or\s+the)\b"
)
# Case-sensitive on purpose: a capitalised word before "plan" is a product name ("Gold
# plan"), a lower-case one is usually not ("my plan", "which plan").
_PLAN = re.compile(
    r"\b(?:(?i:bronze|silver|gold|platinum|basic|standard|premium|plus|family|individual|"
    r"senior|dental|vision)|[A-Z][A-Za-z0-9+]+)\s+(?i:plan|cover|coverage|tier|package)\b"
)
_RIDER = _rx(r"\b(?:riders?|add-?ons?|endorsements?|supplements?|top-?ups?|waivers?)\b")
_PRICE_WORD = _rx(
    r"\b(?:quotes?|premiums?|deductibles?|co-?pays?|co-?insurance|out[- ]of[- ]pocket|"
    r"price|pricing|cost|rates?)\b"
)
_AMOUNT = _rx(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d+)?)|\b\d[\d,]*(?:\.\d+)?\s?(?:dollars|usd|euros?|pounds|bucks)\b"
)

_BUNDLE = _rx(
    r"\b(?:bundl\w*|multi-?(?:car|driver|policy|line|room|vehicle)|package\s+deal|combined)\b"
)
_DISCOUNT = _rx(
    r"\b(?:discounts?|promo(?:tion)?s?|coupons?|loyalty|no[- ]claims?\s+bonus|rebates?|"
    r"student\s+rate|senior\s+rate|family\s+rate)\b"
)
_PARTIES = _rx(
    r"\b(?:two|three|four|five|six|\d+|multiple|several|both|all\s+(?:three|four))\s+"
    r"(?:drivers|cars|vehicles|lines|people|persons|kids|children|members|users|phones|rooms|"
    r"travell?ers|passengers|devices|properties|homes|pets|adults|employees)\b"
)
_TERMS = _rx(
    r"\b(?:instal(?:l)?ments?|monthly\s+(?:vs|or|versus)\s+annual|annual\s+(?:vs|or|versus)"
    r"\s+monthly|financing|payment\s+plan|tiers?)\b"
)
# Words that alone say the visitor is angry (0.4), and milder ones (0.25, the list below).
_STRONG = _rx(
    r"\b(?:furious|livid|outraged|fuming|disgusted|disgraceful|appalling|appalled|"
    r"unacceptable|ridiculous|absurd|insane|worst|joke)\b"
)
# Saying it has happened before: "the THIRD time I'm asking", "how many times".
_REPEATED_ASK = _rx(
    r"\b(?:(?:second|third|fourth|fifth|2nd|3rd|4th|5th|\d+(?:st|nd|rd|th)?|umpteenth|"
    r"hundredth|nth)\s+time|how\s+many\s+times|again\s+and\s+again|over\s+and\s+over|"
    r"keep\s+(?:asking|telling|calling|chasing|getting)|(?:asked|called|written|chased)\s+"
    r"(?:\w+\s+)?(?:twice|three\s+times|\d+\s+times|several\s+times|many\s+times)|"
    r"(?:for|since)\s+(?:days|weeks|months|ages))\b"
)
_NOBODY = _rx(
    r"\b(?:nobody|no\s+one|noone|no-one)\s+(?:\w+\s+)?(?:helps?|helping|cares?|answers?|"
    r"responds?|replies|gets?\s+back|called\s+back|listens?|does\s+anything|fixed)\b|"
    r"\bno\s+help\b|\bnot\s+(?:a\s+)?single\s+(?:reply|answer|call)\b"
)
_SHOUTED_WORD = re.compile(r"\b[A-Z]{4,}\b")
_NEGATIVE = _rx(
    r"\b(?:frustrat\w*|annoy\w*|angry|furious|ridiculous|useless|terrible|awful|horrible|"
    r"waste\s+of\s+(?:my\s+)?time|not\s+(?:helpful|working|what\s+i\s+asked)|"
    r"doesn'?t\s+work|does\s+not\s+work|still\s+(?:not|no|waiting|wrong)|fed\s+up|sick\s+of|"
    r"hate|stupid|pointless|give\s+up|already\s+(?:told|said|gave)|wtf|come\s+on)\b|\bagain\?"
)
_ACRONYMS = frozenset({"HIPAA", "ASAP", "NHS", "IBAN", "SWIFT", "VISA", "USPS", "FEDEX", "HTTP"})
_BURST = re.compile(r"[!?]{3,}")
_WORD = re.compile(r"[a-z0-9']+")
_STOP = frozenset(
    {
        "a", "an", "the", "i", "my", "me", "you", "your", "is", "are", "was", "were", "be",
        "to", "of", "and", "or", "in", "on", "for", "it", "this", "that", "at", "with", "can",
        "could", "would", "please", "what", "do", "does", "did", "how", "about", "just",
    }
)  # fmt: skip


def _best(rules: Sequence[Rule], text: str) -> tuple[float, str] | None:
    best: tuple[float, str] | None = None
    for rule in rules:
        m = rule.pattern.search(text)
        if m and (best is None or rule.score > best[0]):
            best = (rule.score, f'{rule.label}: "{m.group().strip()}"')
    return best


_PERSON_LABELS = frozenset({"asks to talk to a person", "mentions a person"})


PERSON_REQUEST_SCORE = 0.95


def _explicit(text: str) -> Signal | None:
    """A request for a person is its own kind (`explicit_request_human`), so that an
    operator gate can take it; a request for a call or voice stays `explicit_request`.
    A person asked for in any words (`person_request`) outranks a call in the same breath
    ("can someone from your team call me" wants a person)."""
    if m := person_request(text):
        evidence = f'asks for a person: "{m.group().strip()}"'
        return Signal("explicit_request_human", PERSON_REQUEST_SCORE, evidence)
    hit = _best(_EXPLICIT, text)
    if hit is None:
        return None
    label = hit[1].split(":", 1)[0]
    kind: SignalKind = "explicit_request_human" if label in _PERSON_LABELS else "explicit_request"
    return Signal(kind, hit[0], hit[1])


def channel_request(text: str) -> re.Match[str] | None:
    """The span where the visitor asks to move to a call or a person, if the sentence does
    (the restatement leaves such a sentence out: the handoff itself answers it)."""
    if m := person_request(text):
        return m
    for rule in _EXPLICIT:
        if rule.score >= CHANNEL_REQUEST_SCORE and (m := rule.pattern.search(text)):
            return m
    return None


CHANNEL_REQUEST_SCORE = 0.9


def asks_for_person(signals: Sequence[Signal]) -> Signal | None:
    """The visitor's request for a person in this turn, if any (what the operator desk
    queues, and what the agent answers with a person's next step, never a call with it)."""
    return next((s for s in signals if s.kind == "explicit_request_human"), None)


EXPLICIT_KINDS = frozenset({"explicit_request", "explicit_request_human"})


def _compliance(text: str) -> Signal | None:
    hit = _best(_COMPLIANCE, text)
    return Signal("compliance_step", hit[0], hit[1]) if hit else None


def _pricing(text: str) -> Signal | None:
    score, evidence = 0.0, []
    if m := _COMPARE.search(text):
        score += 0.35
        evidence.append(f'comparison "{m.group()}"')
    plans = {p.lower() for p in (m.group() for m in _PLAN.finditer(text))}
    if len(plans) >= 2:
        score += 0.2
        evidence.append("plans " + ", ".join(sorted(plans)))
    riders = [m.group() for m in _RIDER.finditer(text)]
    if riders:
        score += min(0.4, 0.2 * len(riders))
        evidence.append("riders " + ", ".join(riders))
    if m := _PRICE_WORD.search(text):
        score += 0.15
        evidence.append(f'pricing "{m.group()}"')
    amounts = [m.group() for m in _AMOUNT.finditer(text)]
    if amounts:
        score += min(0.3, 0.1 * len(amounts))
        evidence.append("amounts " + ", ".join(amounts))
    if m := _BUNDLE.search(text):
        score += 0.3
        evidence.append(f'bundle "{m.group()}" +0.3')
    discounts = [m.group() for m in _DISCOUNT.finditer(text)]
    if discounts:
        score += min(0.3, 0.15 * len(discounts))
        evidence.append("discounts " + ", ".join(discounts))
    if m := _PARTIES.search(text):
        score += 0.25
        evidence.append(f'several parties "{m.group()}" +0.25')
    if m := _TERMS.search(text):
        score += 0.15
        evidence.append(f'payment terms "{m.group()}" +0.15')
    if not evidence:
        return None
    return Signal("complex_pricing", min(1.0, score), "; ".join(evidence))


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def similarity(a: str, b: str) -> float:
    """Jaccard overlap of content words: 1.0 for the same question reworded trivially."""
    wa, wb = _words(a), _words(b)
    if len(wa) < 3 or len(wb) < 3:
        return 0.0
    return len(wa & wb) / len(wa | wb)


def _shouting(text: str) -> bool:
    letters = [c for c in text if c.isalpha()]
    return len(letters) >= 8 and sum(c.isupper() for c in letters) / len(letters) >= 0.7


def _frustration(text: str, earlier: Sequence[str], failures: int) -> Signal | None:
    score, evidence = 0.0, []
    strong = [m.group() for m in _STRONG.finditer(text)]
    if strong:
        score += min(0.6, 0.4 * len(strong))
        evidence.append("angry wording " + ", ".join(f'"{n}"' for n in strong))
    negatives = [m.group() for m in _NEGATIVE.finditer(text) if m.group() not in strong]
    if negatives:
        score += min(0.5, 0.25 * len(negatives))
        evidence.append("negative wording " + ", ".join(f'"{n}"' for n in negatives))
    if m := _REPEATED_ASK.search(text):
        score += 0.3
        evidence.append(f'says it is a repeat "{m.group()}"')
    if m := _NOBODY.search(text):
        score += 0.25
        evidence.append(f'says nobody helps "{m.group()}"')
    if _shouting(text):
        score += 0.3
        evidence.append("capitals")
    elif shouted := [w for w in _SHOUTED_WORD.findall(text) if w not in _ACRONYMS]:
        score += 0.1
        evidence.append(f'a shouted word "{shouted[0]}"')
    if any(similarity(text, before) >= REPEAT_SIMILARITY for before in earlier):
        score += 0.35
        evidence.append("repeated question")
    if failures > 0:
        score += min(0.3, 0.15 * failures)
        evidence.append(f"{failures} recent failure(s)")
    if _BURST.search(text):
        score += 0.1
        evidence.append("punctuation burst")
    if not evidence or (failures > 0 and len(evidence) == 1):
        # Failures alone are the system's doing, not a visitor's mood.
        return None
    return Signal("frustration_spike", min(1.0, score), "; ".join(evidence))


def detect(
    turn: str,
    *,
    earlier_visitor_turns: Sequence[str] = (),
    recent_failures: int = 0,
    floor: float = DETECTION_FLOOR,
) -> list[Signal]:
    """Signals in `turn` with a score of at least `floor`, strongest first.

    `earlier_visitor_turns` are the visitor's previous turns (any channel), used to spot a
    repeated question; `recent_failures` counts failed verifications and tool errors since
    the visitor's previous turn or so (the caller chooses the window)."""
    found = [
        s
        for s in (
            _explicit(turn),
            _compliance(turn),
            _pricing(turn),
            _frustration(turn, earlier_visitor_turns, recent_failures),
        )
        if s is not None and s.score >= floor
    ]
    found.sort(key=lambda s: (-s.score, s.kind))
    return found


def should_offer(signals: Sequence[Signal], threshold: float = DEFAULT_THRESHOLD) -> Signal | None:
    """The signal that justifies offering a handoff now, if any."""
    return next((s for s in signals if s.score >= threshold), None)
