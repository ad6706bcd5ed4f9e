"""`MessagingService.send` records the delivery status off the event loop: a slow database
must not stall every other request the loop serves."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.messaging.provider import SentMessage
from threadline.channels.messaging.service import MessagingService
from threadline.handoff import tokens
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import Signer
from threadline.ledger.envelope import NewEvent
from threadline.ledger.store import Ledger, open_ledger


class Provider:
    name = "twilio"

    async def send(self, channel: str, to: str, text: str) -> SentMessage:
        return SentMessage("twilio", "sms", "SMout1", "queued", to)


class SlowLedger:
    """The real memory ledger, with appends that block for a while and note their thread."""

    def __init__(self, ledger: Ledger, release: threading.Event) -> None:
        self._ledger = ledger
        self._release = release
        self.threads: list[int] = []
        self.started = threading.Event()

    def append_batch(self, *args: Any, **kwargs: Any) -> Any:
        self.threads.append(threading.get_ident())
        self.started.set()
        assert self._release.wait(5), "the loop never released the append"
        return self._ledger.append_batch(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def test_send_appends_off_the_event_loop() -> None:
    ledger = open_ledger("memory://")
    ledger.append("c1", NewEvent("ConversationStarted", {"channel": "sms"}))
    release = threading.Event()
    slow = SlowLedger(ledger, release)
    service = MessagingService(
        slow,  # type: ignore[arg-type]
        PhoneDirectory(ledger),
        {"twilio": Provider()},  # type: ignore[dict-item]
        handoffs=HandoffService(ledger, signer=Signer(b"k" * 32, tokens.PURPOSE)),
    )

    async def scenario() -> int:
        loop_thread = threading.get_ident()
        sending = asyncio.create_task(
            service.send("twilio", "c1", None, "sms", "+15551230001", "hello")
        )
        # While the append blocks, the loop still runs other work; it then lets it finish.
        assert await asyncio.to_thread(slow.started.wait, 5)
        release.set()
        await sending
        return loop_thread

    loop_thread = asyncio.run(scenario())
    assert slow.threads
    assert loop_thread not in slow.threads
    assert [e.type for e in ledger.read("c1")] == ["ConversationStarted", "MessageDeliveryUpdated"]
    ledger.close()
