"""Records SMS/WhatsApp traffic on conversations: links each inbound message to the right
conversation, keeps retries idempotent, carries identity, and records delivery reports.

Routing of an inbound message, first match wins:
1. its text carries a valid "continue by text" handoff token (`POST .../handoffs` with
   channel sms/whatsapp gives the visitor an `sms:`/WhatsApp link prefilled with it) → the
   handoff service redeems it: a new leg at the level verified in chat (IdentityVerified
   method=handoff_token), and the agent answers with the first utterance generated from the
   replayed history;
2. the number has an open thread on this channel → the message joins that thread's leg;
3. the number is a verified identity of an open conversation → joins it as a new leg, no
   identity event (the conversation is already verified: nothing is asked again);
4. otherwise it starts a conversation.

Every event id derives from the provider's message id, so a webhook retried by the provider
appends nothing new and sends no second reply.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

from threadline.access.authfail import FailedAuthGate
from threadline.channels.messaging import ids, phone
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.messaging.errors import (
    DeliveryFailedError,
    MalformedWebhookError,
    ProviderNotConfiguredError,
)
from threadline.channels.messaging.events import MessageDeliveryUpdated
from threadline.channels.messaging.provider import (
    DeliveryReport,
    InboundMessage,
    MessagingChannel,
    MessagingProvider,
    SentMessage,
    WebhookItem,
    WebhookRequest,
)
from threadline.channels.ports import ConversationStore, VisitorTurns
from threadline.handoff import tokens
from threadline.handoff.errors import TokenRejectedError
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import TOKEN_PATTERN
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IdempotencyConflictError
from threadline.ledger.events import (
    ConversationStarted,
    EventData,
    LegOpened,
    MessagePosted,
)

log = logging.getLogger(__name__)

Route = Literal["token", "thread", "verified", "new", "status", "ignored"]


@dataclass(frozen=True, slots=True)
class Received:
    route: Route
    conversation_id: str | None
    leg_id: str | None = None
    duplicate: bool = False
    # Text the agent wants sent back to the sender (None for retries and status reports).
    reply: str | None = None
    channel: MessagingChannel | None = None
    to: str | None = None


class MessagingService:
    def __init__(
        self,
        store: ConversationStore,
        directory: PhoneDirectory,
        providers: Mapping[str, MessagingProvider],
        *,
        turns: VisitorTurns | None = None,
        handoffs: HandoffService | None = None,
        failed_auth: FailedAuthGate | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._providers = dict(providers)
        self._turns = turns
        self._handoffs = handoffs
        # Refused continue-tokens spend the sender's failure budget; past it (429) the
        # sender's token-bearing messages are refused before anything is looked at.
        self._failed_auth = failed_auth
        # Routing reads the directory then appends: one inbound message at a time per
        # process, so two messages from a new number do not start two conversations.
        self._lock = threading.Lock()

    @property
    def directory(self) -> PhoneDirectory:
        return self._directory

    def provider(self, name: str) -> MessagingProvider:
        try:
            return self._providers[name]
        except KeyError:
            raise ProviderNotConfiguredError(
                f"messaging provider {name!r} is not configured"
            ) from None

    # -- inbound --------------------------------------------------------------------------

    def receive(
        self,
        provider_name: str,
        request: WebhookRequest,
        *,
        channel: MessagingChannel | None = None,
        reports_only: bool = False,
    ) -> list[Received]:
        """Authenticates and parses the whole webhook before recording anything, so a bad
        signature or a malformed body appends nothing. `channel`: the endpoint's channel
        (an SMS endpoint refuses WhatsApp messages); `reports_only`: a status endpoint."""
        provider = self.provider(provider_name)
        provider.authenticate(request)
        items = provider.parse(request)
        for item in items:
            if reports_only and not isinstance(item, DeliveryReport):
                raise MalformedWebhookError("a status callback must carry a MessageStatus")
            if channel is not None and isinstance(item, InboundMessage) and item.channel != channel:
                raise MalformedWebhookError(
                    f"a {item.channel} message sent to the {channel} endpoint"
                )
        if self._failed_auth is not None:
            for item in items:
                if isinstance(item, InboundMessage) and TOKEN_PATTERN.search(item.text):
                    self._failed_auth.check(_sender(item))
        return [self.record(item) for item in items]

    def record(self, item: WebhookItem) -> Received:
        if isinstance(item, DeliveryReport):
            return self._record_report(item)
        with self._lock:
            return self._record_inbound(item)

    def _record_inbound(self, msg: InboundMessage) -> Received:
        message_id = ids.message_event_id(msg.provider, msg.provider_message_id)
        match = TOKEN_PATTERN.search(msg.text)
        text = msg.text
        rejection: str | None = None
        if match is not None:
            text = (msg.text[: match.start()] + msg.text[match.end() :]).strip()
            outcome = self._redeem(match.group(0), msg, message_id)
            if isinstance(outcome, Received):
                return outcome
            rejection = outcome
        text = text or "[continue link]"

        prelude: list[NewEvent] = []
        thread = self._directory.thread(msg.channel, msg.from_number)
        if thread is not None:
            route: Route = "thread"
            conversation_id, leg_id = thread.conversation_id, thread.leg_id
        else:
            verified = self._directory.verified_conversation(msg.from_number)
            if verified is not None:
                route, conversation_id = "verified", verified
            else:
                route = "new"
                conversation_id = ids.conversation_for_message(
                    msg.provider, msg.provider_message_id
                )
                prelude.append(
                    self._event(
                        ConversationStarted(
                            channel=msg.channel, visitor_ref=phone.subject_for(msg.from_number)
                        ),
                        message_id,
                        "started",
                    )
                )
            leg_id = ids.leg_id(conversation_id, msg.channel, msg.from_number)
            prelude.append(self._leg_opened(msg, leg_id, message_id))
        if rejection is not None:
            # The handoff service recorded the refusal on the conversation the token named.
            log.info("continue-by-text token refused (%s); routed as a plain message", rejection)
        try:
            if prelude:
                self._store.append_batch(conversation_id, prelude)
            return self._visitor_message(msg, route, conversation_id, leg_id, text, message_id)
        except IdempotencyConflictError:
            # Recorded before under a different routing (the conversation has changed since):
            # the provider is retrying a message we already have.
            return Received(route, None, duplicate=True, channel=msg.channel)

    def _visitor_message(
        self,
        msg: InboundMessage,
        route: Route,
        conversation_id: str,
        leg_id: str,
        text: str,
        message_id: UUID,
    ) -> Received:
        if self._turns is not None:
            outcome = self._turns.visitor_turn(
                conversation_id, text, leg_id=leg_id, message_id=message_id
            )
            duplicate, reply = outcome.duplicate, outcome.reply
        else:
            event = NewEvent(
                "MessagePosted",
                MessagePosted(role="visitor", text=text),
                event_id=message_id,
                leg_id=leg_id,
                actor=phone.subject_for(msg.from_number),
            )
            duplicate = self._store.append_batch(conversation_id, [event])[0].duplicate
            reply = None
        return Received(
            route,
            conversation_id,
            leg_id,
            duplicate=duplicate,
            reply=None if duplicate else reply,
            channel=msg.channel,
            to=msg.from_number,
        )

    def _redeem(self, token: str, msg: InboundMessage, message_id: UUID) -> Received | str:
        """Joins the conversation a valid token names (through the handoff service, which
        records LegOpened, IdentityVerified(handoff_token) and HandoffCompleted, or a
        VerificationFailed on refusal), or returns why the token was refused."""
        if self._handoffs is None:
            return "not_configured"
        addressed = tokens.addressed_conversation(token)
        if addressed is not None:
            for event in self._store.read(addressed):
                if event.event_id == message_id:  # this very message, retried
                    return Received(
                        "token", addressed, event.leg_id, duplicate=True, channel=msg.channel
                    )
        ref = f"{msg.channel}:{msg.from_number}"
        try:
            grant = self._handoffs.redeem(token, ref, channel=msg.channel)
        except TokenRejectedError as exc:
            if self._failed_auth is not None:
                self._failed_auth.failed(_sender(msg))  # RateLimitedError: nothing more recorded
            return exc.reason
        cid, leg_id = grant.conversation_id, grant.leg_id
        batch = []
        text = TOKEN_PATTERN.sub("", msg.text).strip()
        if text:
            said = MessagePosted(role="visitor", text=text)
            actor = phone.subject_for(msg.from_number)
            batch.append(NewEvent("MessagePosted", said, message_id, leg_id, actor))
        answer = MessagePosted(role="agent", text=grant.first_utterance)
        batch.append(self._event(answer, message_id, "first-utterance", leg_id, actor="agent"))
        self._store.append_batch(cid, batch)
        return Received(
            "token",
            cid,
            leg_id,
            reply=grant.first_utterance,
            channel=msg.channel,
            to=msg.from_number,
        )

    def _leg_opened(self, msg: InboundMessage, leg_id: str, message_id: UUID) -> NewEvent:
        ref = f"{msg.channel}:{msg.from_number}"
        return self._event(
            LegOpened(channel=msg.channel, transport_ref=ref), message_id, "leg", leg_id
        )

    @staticmethod
    def _event(
        data: EventData,
        message_id: UUID,
        what: str,
        leg_id: str | None = None,
        *,
        actor: str | None = None,
    ) -> NewEvent:
        event_id = ids.leg_event_id(str(message_id), leg_id or "-", what)
        return NewEvent(type(data).__name__, data, event_id, leg_id, actor)

    # -- delivery reports -------------------------------------------------------------------

    def _record_report(self, report: DeliveryReport) -> Received:
        sent = self._directory.sent_message(report.provider, report.provider_message_id)
        if sent is None:
            # Sent by someone else (another app on the same number): not ours to record.
            return Received("ignored", None, channel=report.channel)
        update = MessageDeliveryUpdated(
            provider=report.provider,
            channel=report.channel,
            provider_message_id=report.provider_message_id,
            status=report.status,
            error_code=report.error_code,
        )
        event_id = ids.status_event_id(report.provider, report.provider_message_id, report.status)
        leg = sent.leg_id or None
        event = NewEvent("MessageDeliveryUpdated", update, event_id, leg)
        result = self._store.append_batch(sent.conversation_id, [event])[0]
        return Received(
            "status", sent.conversation_id, leg, duplicate=result.duplicate, channel=report.channel
        )

    # -- outbound ---------------------------------------------------------------------------

    async def send(
        self,
        provider_name: str,
        conversation_id: str,
        leg_id: str | None,
        channel: MessagingChannel,
        to: str,
        text: str,
        *,
        message_event_id: UUID | None = None,
    ) -> SentMessage:
        """Sends `text` and records that the provider queued it (MessageDeliveryUpdated), so
        later status callbacks find their conversation."""
        sent = await self.provider(provider_name).send(channel, to, text)
        update = MessageDeliveryUpdated(
            provider=sent.provider,
            channel=sent.channel,
            provider_message_id=sent.provider_message_id,
            status=sent.status,
            message_event_id=str(message_event_id) if message_event_id else None,
        )
        event_id = ids.status_event_id(sent.provider, sent.provider_message_id, sent.status)
        # The append waits on the database (and on group commit): off the event loop, so
        # other requests and live streams keep being served meanwhile.
        await asyncio.to_thread(
            self._store.append_batch,
            conversation_id,
            [NewEvent("MessageDeliveryUpdated", update, event_id, leg_id)],
        )
        return sent

    async def reply(self, provider_name: str, received: Received) -> SentMessage | None:
        """Sends the agent's reply for an inbound message; failures are logged, not raised
        (the inbound message is already recorded; the provider must not retry it)."""
        if received.reply is None or received.channel is None or received.to is None:
            return None
        if received.conversation_id is None:
            return None
        try:
            return await self.send(
                provider_name,
                received.conversation_id,
                received.leg_id,
                received.channel,
                received.to,
                received.reply,
            )
        except (DeliveryFailedError, ProviderNotConfiguredError) as exc:
            log.warning("reply on %s not delivered: %s", received.conversation_id, exc)
            return None

    async def deliver(
        self, conversation_id: str, text: str, *, message_event_id: UUID
    ) -> list[tuple[str, str | None]]:
        """Sends an already recorded message (an operator's) to each open SMS/WhatsApp leg
        of the conversation; per leg: (channel, None) when the provider queued it, else
        (channel, why not). Never raises for a delivery failure (the message is recorded)."""
        outcomes: list[tuple[str, str | None]] = []
        for thread in self._directory.open_threads(conversation_id):
            channel: MessagingChannel = "whatsapp" if thread.channel == "whatsapp" else "sms"
            # The provider that last wrote on this leg; else the one that handles both.
            name = thread.provider or "twilio"
            try:
                await self.send(
                    name,
                    conversation_id,
                    thread.leg_id,
                    channel,
                    thread.number,
                    text,
                    message_event_id=message_event_id,
                )
            except (DeliveryFailedError, ProviderNotConfiguredError) as exc:
                log.warning("operator message on %s not delivered: %s", conversation_id, exc)
                outcomes.append((channel, str(exc)[:200] or "delivery failed"))
            else:
                outcomes.append((channel, None))
        return outcomes


def _sender(msg: InboundMessage) -> str:
    """The failure budget's key: the claimed sender (the webhook itself is authenticated)."""
    return f"{msg.channel}:{msg.from_number}"
