"""Builders for conversations used by the handoff tests."""

from __future__ import annotations

from datetime import UTC, datetime

from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationStarted,
    EventData,
    HandoffOffered,
    IdentityClaimed,
    IdentityVerified,
    LegOpened,
    MessagePosted,
    ToolCalled,
    ToolResulted,
)
from threadline.ledger.store import Ledger

CHAT_LEG = "leg_chat"
# The handoff tests' clock: the seeded claims are dated from it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def add(ledger: Ledger, cid: str, data: EventData, leg: str | None = CHAT_LEG) -> None:
    ledger.append(cid, NewEvent(type(data).__name__, data, leg_id=leg))


def start_chat(ledger: Ledger, cid: str) -> None:
    add(ledger, cid, ConversationStarted(channel="chat"), None)
    add(ledger, cid, LegOpened(channel="chat", transport_ref="widget"))


def january_claim_chat(
    ledger: Ledger, cid: str, *, verified: bool = True, offer: str | None = "h-offer"
) -> None:
    start_chat(ledger, cid)
    say = [
        ("visitor", "Hi, I have a question about my January claim"),
        ("agent", "Happy to help. What's your date of birth and member number?"),
        ("visitor", "1984-03-12 and MBR-100234"),
    ]
    for role, text in say:
        add(ledger, cid, MessagePosted(role=role, text=text))  # type: ignore[arg-type]
    if verified:
        add(ledger, cid, IdentityClaimed(method="kba", subject="MBR-100234"))
        add(ledger, cid, IdentityVerified(method="kba", level=2, subject="MBR-100234"))
    add(ledger, cid, ToolCalled(call_id="c1", name="lookup", arguments={"kind": "claim"}))
    add(
        ledger,
        cid,
        ToolResulted(
            call_id="c1",
            result=[{"reference": "CLM-4821", "status": "pending_review", "amount": "$2,340.00"}],
        ),
    )
    add(ledger, cid, MessagePosted(role="agent", text="Claim CLM-4821 for $2,340.00 is pending."))
    add(ledger, cid, MessagePosted(role="visitor", text="Do I need a HIPAA authorization?"))
    if offer:
        add(ledger, cid, HandoffOffered(handoff_id=offer, reason="compliance_step"))
