"""An operator's message reaches the visitor wherever they are (issue 16).

The console records the operator's words once (MessagePosted role operator, in takeover.py);
this adapter then hands the same text to each open leg that is not read from the stream: an
SMS/WhatsApp thread through the messaging providers, an email thread through the relay. Each
channel records only its delivery (MessageDeliveryUpdated, EmailSent/EmailDeliveryFailed),
so nothing is posted twice.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from threadline.channels.email.service import EmailService
    from threadline.channels.messaging.service import MessagingService


class LegDelivery:
    def __init__(
        self, messaging: MessagingService | None = None, email: EmailService | None = None
    ) -> None:
        self._messaging = messaging
        self._email = email

    async def deliver(
        self, conversation_id: str, text: str, event_id: UUID
    ) -> list[tuple[str, str | None]]:
        outcomes: list[tuple[str, str | None]] = []
        if self._messaging is not None:
            outcomes += await self._messaging.deliver(
                conversation_id, text, message_event_id=event_id
            )
        email = self._email
        if email is not None and await asyncio.to_thread(email.has_thread, conversation_id):
            # SMTP is blocking: off the event loop.
            done = await asyncio.to_thread(
                email.mail_posted, conversation_id, text, event_id=event_id
            )
            outcomes.append(("email", done.error))
        return outcomes
