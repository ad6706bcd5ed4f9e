"""The phone directory after `SubjectErased` (issue 18): a replica that folded the
conversation's numbers before the erasure forgets them, as one that folds the log after the
erasure never learns them (it reads `[erased]`), so every replica routes a later text or
call from the number alike: not into the erased conversation."""

from __future__ import annotations

from threadline.channels.messaging.directory import PhoneDirectory
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import (
    ConversationStarted,
    IdentityVerified,
    LegOpened,
    SubjectErased,
)
from threadline.ledger.store import open_ledger

PHONE = "+15551230077"


def test_an_erased_conversations_numbers_are_forgotten_and_relearned_only_anew() -> None:
    with open_ledger("memory://") as ledger:
        ledger.append_batch(
            "c1",
            [
                NewEvent("ConversationStarted", ConversationStarted(channel="chat")),
                NewEvent(
                    "IdentityVerified",
                    IdentityVerified(method="kba", level=2, subject=f"tel:{PHONE}"),
                ),
                NewEvent(
                    "LegOpened",
                    LegOpened(channel="sms", transport_ref=f"sms:{PHONE}"),
                    leg_id="sms-1",
                ),
            ],
        )
        ledger.append_batch(
            "c2", [NewEvent("ConversationStarted", ConversationStarted(channel="chat"))]
        )
        directory = PhoneDirectory(ledger)
        assert directory.verified_conversation(PHONE) == "c1"
        assert directory.thread("sms", PHONE) is not None
        assert directory.verified_phone("c1") == PHONE

        ledger.append("c1", NewEvent("SubjectErased", SubjectErased(subject="hmac:ab")))
        assert directory.verified_conversation(PHONE) is None
        assert directory.thread("sms", PHONE) is None
        assert directory.verified_phone("c1") is None
        assert directory.open_threads("c1") == []
        assert directory.level("c1") == 2  # a level is no personal data; a new fold has it

        # Verified again later (in another conversation): that is new knowledge.
        ledger.append(
            "c2",
            NewEvent(
                "IdentityVerified", IdentityVerified(method="kba", level=1, subject=f"tel:{PHONE}")
            ),
        )
        assert directory.verified_conversation(PHONE) == "c2"
