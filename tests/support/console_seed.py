"""Seeded conversations for the console's tests, appended through the real ledger."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import Ledger

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class Script:
    """Appends events one after another, each a few seconds after the previous one."""

    def __init__(self, ledger: Ledger, conversation_id: str, start: datetime) -> None:
        self.ledger = ledger
        self.conversation_id = conversation_id
        self.at = start

    def __call__(
        self, type_: str, data: dict[str, Any], leg: str | None = None, after_s: float = 3
    ) -> int:
        self.at += timedelta(seconds=after_s)
        result = self.ledger.append(
            self.conversation_id,
            NewEvent(type_, data, leg_id=leg, occurred_at=self.at, actor="seed"),
        )
        return result.position


def chat_voice_chat(ledger: Ledger, conversation_id: str = "conv-chat-voice-chat") -> str:
    """A chat that switches to a WebRTC voice leg and comes back to chat."""
    s = Script(ledger, conversation_id, T0)
    s("ConversationStarted", {"channel": "chat", "visitor_ref": "cookie-77aa"}, after_s=0)
    s("LegOpened", {"channel": "chat", "transport_ref": "ws-1"}, "chat-1")
    s("MessagePosted", {"role": "visitor", "text": "Hi, about my January claim"}, "chat-1")
    s("IdentityClaimed", {"method": "cookie", "subject": "alice@example.com"}, "chat-1")
    s("IdentityVerified", {"method": "otp", "level": 2, "subject": "alice@example.com"}, "chat-1")
    s(
        "ToolCalled",
        {"call_id": "t1", "name": "lookup_claim", "arguments": {"month": "January"}},
        "chat-1",
    )
    s(
        "ToolResulted",
        {"call_id": "t1", "result": {"claim": "CLM-4821", "status": "pending"}},
        "chat-1",
    )
    s("MessagePosted", {"role": "agent", "text": "Claim CLM-4821 is pending review."}, "chat-1")
    s(
        "MessagePosted",
        {"role": "visitor", "text": "This is confusing, can I talk to someone?"},
        "chat-1",
    )
    s(
        "EscalationSignalDetected",
        {"signal": "explicit_request", "score": 0.92, "evidence": "can I talk to someone"},
        "chat-1",
    )
    s(
        "HandoffOffered",
        {"handoff_id": "h1", "channel": "webrtc", "reason": "explicit request"},
        "chat-1",
    )
    s("HandoffAccepted", {"handoff_id": "h1", "channel": "webrtc"}, "chat-1")
    s("LegOpened", {"channel": "webrtc", "transport_ref": "pc-9f3"}, "voice-1", after_s=1)
    first = "I see you were asking about your January claim."
    s(
        "HandoffCompleted",
        {"handoff_id": "h1", "leg_id": "voice-1", "first_utterance": first},
        "voice-1",
        1,
    )
    s("AgentSpoke", {"text": first}, "voice-1")
    s(
        "UtteranceTranscribed",
        {
            "role": "visitor",
            "text": "yes why is it pending",
            "start_ms": 0,
            "end_ms": 1800,
            "confidence": 0.88,
        },
        "voice-1",
    )
    s(
        "AgentSpoke",
        {
            "text": "It is pending because the dentist has not sent the invoice yet.",
            "interrupted": True,
            "spoken_text": "It is pending because",
        },
        "voice-1",
    )
    s(
        "UtteranceTranscribed",
        {
            "role": "visitor",
            "text": "ok send me the summary",
            "start_ms": 2100,
            "end_ms": 3500,
            "confidence": 0.9,
        },
        "voice-1",
    )
    s("LegClosed", {"reason": "visitor hung up"}, "voice-1")
    s("MessagePosted", {"role": "agent", "text": "Here is the summary of our call."}, "chat-1")
    s("CSATRecorded", {"score": 5}, "chat-1")
    s("ConversationResolved", {"outcome": "resolved"})
    return conversation_id


def chat_only(
    ledger: Ledger,
    conversation_id: str,
    *,
    day: int = 0,
    resolved: bool = True,
    csat: int | None = 3,
) -> str:
    s = Script(ledger, conversation_id, T0 + timedelta(days=day, hours=1))
    s("ConversationStarted", {"channel": "chat"}, after_s=0)
    s("LegOpened", {"channel": "chat"}, "c")
    s("MessagePosted", {"role": "visitor", "text": "What are your opening hours?"}, "c")
    s("MessagePosted", {"role": "agent", "text": "9 to 5."}, "c")
    if csat is not None:
        s("CSATRecorded", {"score": csat}, "c")
    if resolved:
        s("ConversationResolved", {"outcome": "resolved"})
    return conversation_id


def sms_thread(ledger: Ledger, conversation_id: str, *, day: int = 0) -> str:
    s = Script(ledger, conversation_id, T0 + timedelta(days=day, hours=2))
    s("ConversationStarted", {"channel": "sms"}, after_s=0)
    s("LegOpened", {"channel": "sms", "transport_ref": "+15550100"}, "s")
    s("MessagePosted", {"role": "visitor", "text": "Call me at +1 555 0100 please"}, "s")
    s("IdentityVerified", {"method": "ani", "level": 1, "subject": "bob-1234"}, "s")
    s("ConversationResolved", {"outcome": "abandoned"})
    return conversation_id


def switched(
    ledger: Ledger,
    conversation_id: str,
    *,
    day: int = 0,
    reverify: bool = False,
    complete: bool = True,
    accept: bool = True,
    latency_s: float = 2.0,
    csat: int | None = 4,
    resolved: bool = True,
) -> str:
    """A chat offered a switch to voice; how far it got is set by the flags."""
    s = Script(ledger, conversation_id, T0 + timedelta(days=day, hours=3))
    s("ConversationStarted", {"channel": "chat"}, after_s=0)
    s("LegOpened", {"channel": "chat"}, "c")
    s("IdentityVerified", {"method": "otp", "level": 2, "subject": f"subj-{conversation_id}"}, "c")
    s("HandoffOffered", {"handoff_id": "h", "channel": "webrtc"}, "c")
    if not accept:
        s("HandoffDeclined", {"handoff_id": "h"}, "c")
    else:
        s("HandoffAccepted", {"handoff_id": "h", "channel": "webrtc"}, "c")
        if complete:
            s("LegOpened", {"channel": "webrtc"}, "v", after_s=0.5)
            s(
                "HandoffCompleted",
                {"handoff_id": "h", "leg_id": "v", "first_utterance": "Hello again."},
                "v",
                after_s=latency_s,
            )
            heard_at = (s.at + timedelta(seconds=0.1)).isoformat()
            s("AgentSpoke", {"text": "Hello again.", "first_audio_at": heard_at}, "v", after_s=0.1)
            if reverify:
                s(
                    "IdentityVerified",
                    {"method": "kba", "level": 2, "subject": f"subj-{conversation_id}"},
                    "v",
                )
            s("LegClosed", {"reason": "done"}, "v")
        else:
            s("HandoffExpired", {"handoff_id": "h"}, "c")
    if csat is not None:
        s("CSATRecorded", {"score": csat}, "c")
    if resolved:
        s("ConversationResolved", {"outcome": "resolved"})
    return conversation_id


def population(ledger: Ledger) -> list[str]:
    """Several days of varied conversations for the list and the dashboard."""
    ids = [chat_voice_chat(ledger)]
    ids.append(chat_only(ledger, "conv-chat-1"))
    ids.append(chat_only(ledger, "conv-chat-2", day=1, resolved=False, csat=None))
    ids.append(sms_thread(ledger, "conv-sms-1", day=1))
    ids.append(switched(ledger, "conv-sw-1", latency_s=1.5))
    ids.append(switched(ledger, "conv-sw-2", day=1, reverify=True, latency_s=3.0, csat=2))
    ids.append(switched(ledger, "conv-sw-3", day=1, complete=False, csat=None, resolved=False))
    ids.append(switched(ledger, "conv-sw-4", day=2, accept=False, csat=3))
    ids.append(switched(ledger, "conv-sw-5", day=2, latency_s=2.5, csat=5))
    ids.append(chat_only(ledger, "conv-chat-3", day=2, csat=4))
    return ids
