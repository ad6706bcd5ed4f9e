"""What the visitor is asking about: a short topic phrase and the questions they asked.

Rule-based and deterministic like `projections.entities`. The topic is a noun from a small
customer-service vocabulary with at most two qualifiers before it ("January claim",
"dental insurance claim") or a month after it ("my claim from March" → "March claim"). It is
meant to read well after "your" in a sentence an agent speaks.
"""

from __future__ import annotations

import re

from threadline.projections.entities import MONTHS, words

# Canonical noun for each surface form (plurals and synonyms fold onto one noun).
TOPIC_NOUNS: dict[str, str] = {
    "claim": "claim",
    "claims": "claim",
    "policy": "policy",
    "policies": "policy",
    "order": "order",
    "orders": "order",
    "bill": "bill",
    "bills": "bill",
    "billing": "bill",
    "invoice": "invoice",
    "invoices": "invoice",
    "payment": "payment",
    "payments": "payment",
    "refund": "refund",
    "refunds": "refund",
    "reimbursement": "reimbursement",
    "subscription": "subscription",
    "account": "account",
    "appointment": "appointment",
    "appointments": "appointment",
    "prescription": "prescription",
    "prescriptions": "prescription",
    "delivery": "delivery",
    "shipment": "delivery",
    "parcel": "delivery",
    "package": "delivery",
    "booking": "booking",
    "reservation": "booking",
    "premium": "premium",
    "premiums": "premium",
    "deductible": "deductible",
    "coverage": "coverage",
    "plan": "plan",
    "membership": "membership",
    "return": "return",
    "complaint": "complaint",
    "quote": "quote",
    "card": "card",
    "password": "password",
    "statement": "statement",
    "charge": "charge",
    "charges": "charge",
    "contract": "contract",
    "warranty": "warranty",
    "repair": "repair",
}
# Words that may qualify a topic noun ("dental claim", "pending refund"). A whitelist, because
# the word before a noun is as often a verb ("check claim") as a qualifier.
QUALIFIERS = frozenset(
    {
        "dental", "medical", "vision", "health", "hospital", "pharmacy", "car", "auto", "motor",
        "home", "house", "travel", "life", "pet", "phone", "mobile", "internet", "broadband",
        "credit", "debit", "insurance", "warranty", "pending", "recent", "last", "previous",
        "latest", "new", "open", "denied", "rejected", "declined", "outstanding", "current",
        "monthly", "annual", "yearly", "overdue", "late", "missing", "damaged", "lost",
        "online", "first", "second", "final", "double", "duplicate", "unpaid", "partial",
        "storm", "flood", "water", "fire", "theft", "accident", "maternity", "physio",
        "surgery", "emergency", "electricity", "gas", "energy", "renewal", "premium",
    }
)  # fmt: skip
_MONTH_KEYS = {m.lower(): m for m in MONTHS}
_NOUN_WORDS = frozenset(TOPIC_NOUNS)
_NOUN_RX = {word: re.compile(rf"\b{word}\b", re.I) for word in TOPIC_NOUNS}
_LAST_WORD = re.compile(r"\b([A-Za-z][A-Za-z'-]*)\s+$")
_TRAILING_MONTH = re.compile(
    r"\s+(?:from|for|in|of|back in|dated|made in|filed in|submitted in)\s+(?P<m>"
    + "|".join(MONTHS)
    + r")\b",
    re.I,
)

_SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+")
_QUESTION_START = re.compile(
    r"^(?:(?:hi|hello|hey|so|and|but|also|ok|okay|well|please)[,!]?\s+)*"
    r"(?:what|what's|whats|when|where|why|how|who|which|whose|can|could|would|will|is|are|"
    r"was|were|do|does|did|should|shall|may|might|have|has|am|isn't|aren't|didn't|doesn't|"
    r"won't|can't)\b",
    re.I,
)
_INDIRECT_QUESTION = re.compile(
    r"\b(?:i\s+(?:have|had|got)\s+(?:a\s+)?(?:quick\s+|small\s+)?questions?|"
    r"i\s+(?:was\s+|am\s+|'m\s+)?wonder(?:ing)?\s+(?:if|whether|why|when|how|what)|"
    r"i\s+(?:want|need|would like|'d like)\s+to\s+(?:know|understand|find out|check)|"
    r"(?:can|could)\s+you\s+(?:tell|explain|check|confirm|help))\b",
    re.I,
)
# Agent turns that buy time do not answer anything ("let me check that for you").
_HOLDING = re.compile(
    r"\b(?:let me (?:check|look|see|find|pull|verify|confirm)|one moment|just a (?:moment|sec)|"
    r"bear with me|hold on|give me a (?:moment|second|sec|minute)|i'll (?:check|look|find)|"
    r"checking (?:that|now|on))\b",
    re.I,
)
_ASKING = frozenset(
    {
        "what", "what's", "whats", "when", "where", "why", "how", "who", "which", "whose", "can",
        "could", "would", "will", "is", "are", "was", "were", "do", "does", "did", "should",
        "shall", "may", "might", "have", "has", "am", "isn't", "aren't", "didn't", "doesn't",
        "won't", "can't", "wonder", "wondering", "question", "questions", "know", "understand",
        "find", "check",
    }
)  # fmt: skip
_HOLDING_WORDS = frozenset({"let", "moment", "sec", "bear", "hold", "give", "i'll", "checking"})
MAX_QUESTION_CHARS = 200
# "my policy number is POL-1", "account no. 55": the noun labels a credential the visitor
# gives to be verified; it is not what they are asking about.
_CREDENTIAL_NOUNS = frozenset({"policy", "account", "membership"})
_CREDENTIAL_SUFFIX = re.compile(r"\s*(?:number|no\.?|num|id)\b", re.I)


def topic_phrase(text: str, tokens: frozenset[str] | None = None) -> tuple[str, str] | None:
    """(phrase, canonical noun) for the first topic noun in `text`, or None."""
    hits = _NOUN_WORDS.intersection(words(text) if tokens is None else tokens)
    if not hits:
        return None
    candidates = [
        found
        for word in hits
        for found in _NOUN_RX[word].finditer(text)
        if not (word in _CREDENTIAL_NOUNS and _CREDENTIAL_SUFFIX.match(text, found.end()))
    ]
    if not candidates:
        return None
    m = min(candidates, key=lambda found: found.start())
    noun = TOPIC_NOUNS[m.group().lower()]
    qualifiers: list[str] = []
    before = text[: m.start()]
    while len(qualifiers) < 2:
        # Only words directly before the noun (whitespace between) can qualify it.
        w = _LAST_WORD.search(before)
        if w is None:
            break
        key = w.group(1).lower()
        if key in _MONTH_KEYS and key != "may":
            qualifiers.append(_MONTH_KEYS[key])
        elif key in QUALIFIERS and key != noun:
            qualifiers.append(key)
        else:
            break
        before = before[: w.start()]
    qualifiers.reverse()
    if not any(q in MONTHS for q in qualifiers):
        trailing = _TRAILING_MONTH.match(text, m.end())
        if trailing is not None:
            qualifiers.insert(0, _MONTH_KEYS[trailing.group("m").lower()])
    return " ".join([*qualifiers, noun]), noun


def questions(text: str, tokens: frozenset[str] | None = None) -> list[str]:
    """The sentences of a visitor turn that ask something, trimmed to a readable length."""
    if "?" not in text and _ASKING.isdisjoint(words(text) if tokens is None else tokens):
        return []
    found = []
    for sentence in _SENTENCE_SPLIT.split(text.strip()):
        s = sentence.strip()
        if not s:
            continue
        if s.endswith("?") or _QUESTION_START.match(s) or _INDIRECT_QUESTION.search(s):
            found.append(s if len(s) <= MAX_QUESTION_CHARS else s[: MAX_QUESTION_CHARS - 1] + "…")
    return found


def answers(text: str, tokens: frozenset[str] | None = None) -> bool:
    """Whether an agent turn can count as an answer (not a holding line, not only a question)."""
    s = text.strip()
    if not s or s.endswith("?"):
        return False
    if _HOLDING_WORDS.isdisjoint(words(text) if tokens is None else tokens):
        return True
    return _HOLDING.search(s) is None


# --- requests and answers (any topic) ------------------------------------------------------

_VERBS = (
    r"cancel|change|update|move|book|reschedule|refund|return|send|replace|fix|stop|add|"
    r"remove|upgrade|downgrade|transfer|close|open|reset|unlock|block|pause|switch|check|"
    r"track|get|order|renew|extend|dispute|report|arrange|schedule|sort|help|confirm|apply|"
    r"activate|deactivate|port|swap|exchange|repair|claim|pay|split|waive|lower|increase"
)
# A visitor sentence that states what they want or what went wrong, in their own words:
# "I'd like …", "I need …", "my dishwasher has been leaking …", "please cancel …".
_REQUEST = re.compile(
    r"\b(?:i|we)(?:'d|\s+would)\s+(?:like|love|prefer)\b"
    r"|\b(?:i|we)\s+(?:really\s+|just\s+|only\s+|also\s+)?(?:want|wanna|need|needed|wanted|"
    r"have\s+to|must|'m\s+trying|am\s+trying|'m\s+looking|am\s+looking|was\s+(?:trying|hoping)|"
    r"can'?t|cannot|couldn'?t|never|still\s+ha(?:ve|ven'?t)|haven'?t|didn'?t|got|received|"
    r"ordered|bought|paid|booked|lost|forgot|moved|returned|sent|was\s+charged|"
    r"(?:was|were|got|have\s+been|'ve\s+been)\s+(?:charged|billed|told|promised)|"
    r"applied|filed|submitted|tried|called|keep|noticed|see|"
    r"ha(?:ve|d)\s+(?:a|an|two|three|some)|'ve\s+got|'ve\s+been|have\s+been)\b"
    r"|\b(?:i|we)(?:'m|\s+am|\s+was|'re|\s+are|\s+were)\s+(?:writing|calling|contacting|"
    r"emailing|messaging|chatting|trying|looking|moving|going|having|getting|still|being|"
    r"unable|not\s+able|locked|stuck|charged|billed|overcharged)\b"
    r"|\b(?:my|our)\s+(?:[a-z0-9'-]+\s+){0,3}(?:is|are|was|were|has|have|had|hasn'?t|"
    r"haven'?t|isn'?t|aren'?t|won'?t|wont|keeps|stopped|doesn'?t|didn'?t|never|came|arrived|"
    r"got|broke|renews|expires|shows|says|went|still|needs|leaks|started)\b"
    r"|^(?:(?:hi|hello|hey|ok|okay|so|also|and|actually)[,!]?\s+)*(?:please\s+|pls\s+|plz\s+|"
    r"kindly\s+)?(?:" + _VERBS + r")\b"
    r"|\b(?:please|pls|plz)\s+(?:" + _VERBS + r")\b"
    r"|\b(?:can|could|would|will)\s+(?:you|someone|somebody)\s+(?:please\s+|pls\s+)?(?:"
    + _VERBS
    + r")\b",
    re.I,
)
_REQUEST_HINT = frozenset(
    {"i", "we", "i'd", "we'd", "my", "our", "please", "pls", "plz", "kindly", "you", "someone"}
    | set(_VERBS.split("|"))
)
# Only a filler or a courtesy: never a request on its own.
_COURTESY = re.compile(
    r"^(?:hi|hello|hey|thanks?|thank\s+you|ok(?:ay)?|yes|no|yep|nope|sure|cheers|bye|great|"
    r"cool|fine|right|hello\?|anyone there)[\s!.,?]*$",
    re.I,
)


def sentences(text: str) -> list[str]:
    """The sentences of a chat turn (a regular split: chat turns are short and rarely hold
    abbreviations; see docs/handoff.md for why not pysbd)."""
    return [s.strip() for s in _SENTENCE_SPLIT.split(text.strip()) if s.strip()]


def requests(text: str, tokens: frozenset[str] | None = None) -> list[str]:
    """The sentences of a visitor turn that say what the visitor wants or what went wrong."""
    if _REQUEST_HINT.isdisjoint(words(text) if tokens is None else tokens):
        return []
    found = []
    for s in sentences(text):
        if _COURTESY.match(s) or _REQUEST.search(s) is None:
            continue
        found.append(s if len(s) <= MAX_QUESTION_CHARS else s[: MAX_QUESTION_CHARS - 1] + "…")
    return found


# Agent turns that ask for something instead of answering ("what's your date of birth",
# "could you tell me more"): they answer nothing even without a question mark.
_DEFLECTING = re.compile(
    r"\b(?:verify\s+your\s+identity|your\s+date\s+of\s+birth|could\s+you\s+(?:also\s+)?"
    r"(?:give|tell|send)|tell\s+me\s+a\s+bit\s+more|what\s+can\s+i\s+do\s+for\s+you|"
    r"how\s+can\s+i\s+help|"
    # A handover is not an answer: "I can't see live tracking", "is checked by our team".
    r"i\s+can'?t|can'?t\s+see|a\s+colleague|i've\s+(?:noted|added)\s+that|"
    r"(?:handled|booked|confirmed|checked|opened|given|set\s+up)\s+by\s+(?:our|a))\b",
    re.I,
)
_CONTENT_STOP = frozenset(
    {
        "a", "an", "the", "i", "my", "me", "you", "your", "is", "are", "was", "were", "be",
        "been", "to", "of", "and", "or", "in", "on", "for", "it", "its", "it's", "this", "that",
        "at", "with", "can", "could", "would", "will", "please", "what", "do", "does", "did",
        "how", "about", "just", "have", "has", "had", "so", "if", "there", "any", "we", "our",
        "yet", "still", "why", "when", "where", "who", "which", "not", "no", "yes", "get",
        "know", "need", "want", "like", "question", "hi", "hello", "hey", "ok", "okay", "also",
        "i'm", "i'd", "much", "many", "some", "all", "up", "out", "now", "then", "they", "them",
        "sure", "help", "let", "am", "by", "from", "as", "but", "should",
    }
)  # fmt: skip


def _stem(word: str) -> str:
    word = word.replace("isation", "ization").replace("ise", "ize")
    for suffix in ("ing", "ed", "es", "s"):
        if len(word) > len(suffix) + 3 and word.endswith(suffix):
            return word[: -len(suffix)]
    return word


def content_stems(text: str) -> frozenset[str]:
    """Content words of `text`, lightly stemmed: what an answer must share with a question."""
    return frozenset(
        _stem(w) for w in re.findall(r"[a-z0-9$][a-z0-9'$.,-]*[a-z0-9]|[a-z0-9]", text.lower())
        if w not in _CONTENT_STOP
    )  # fmt: skip


def deflects(text: str) -> bool:
    return _DEFLECTING.search(text) is not None


def answers_question(
    answer: frozenset[str], question: str, memo: dict[str, frozenset[str]] | None = None
) -> bool:
    """Whether an agent turn with content stems `answer` speaks to `question`. `memo`: the
    caller's own question → stems map. A question's stems are compared with every later
    agent turn while it stays open (a 1,000-event replay computed them ~70,000 times), so
    the fold passes one dict for its lifetime — never a process-wide cache, which would hold
    the visitor's text across tenants and past an erasure."""
    known = None if memo is None else memo.get(question)
    if known is None:
        known = content_stems(question)
        if memo is not None:
            memo[question] = known
    asked = known
    return not asked or not asked.isdisjoint(answer)
