"""Records email on conversations and sends the replies, threaded like any mail client
expects.

Routing of an inbound mail, first match wins:
1. it carries a valid "continue by email" handoff token (subject or body) → the handoff
   service redeems it: a new email leg at the level verified in chat, and the first reply is
   the first utterance generated from the replayed history;
2. its In-Reply-To/References name a Message-ID recorded in an open conversation (one the
   visitor sent or one Threadline sent) → that conversation and leg;
3. the address has an open email thread → that thread;
4. the address is a verified identity (`mailto:`) of an open conversation → joins it as a
   new leg, with no identity event: an address match links, it never grants a level;
5. otherwise it starts a conversation.

Every event id derives from the Message-ID, so a redelivered mail appends nothing and gets
no second reply. Everything here is synchronous (the ledger is); the listener calls it from
a worker thread, never on the event loop.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Literal, Protocol
from uuid import UUID

from threadline.channels.email import ids
from threadline.channels.email.directory import EmailDirectory, subject_for, transport_ref
from threadline.channels.email.errors import DeliveryFailedError
from threadline.channels.email.events import EmailDeliveryFailed, EmailReceived, EmailSent
from threadline.channels.email.parsing import ParsedMail, parse
from threadline.channels.ports import ConversationStore, VisitorTurns
from threadline.handoff import tokens
from threadline.handoff.errors import TokenRejectedError
from threadline.handoff.service import HandoffService
from threadline.handoff.signing import TOKEN_PATTERN
from threadline.ledger.envelope import NewEvent
from threadline.ledger.errors import IdempotencyConflictError
from threadline.ledger.events import ConversationStarted, EventData, LegOpened, MessagePosted

log = logging.getLogger(__name__)

NO_TEXT = "[no text]"
Route = Literal["token", "reply", "thread", "verified", "new", "duplicate"]


class Relay(Protocol):
    """Hands a composed message to the outbound relay; raises DeliveryFailedError. Blocking."""

    def send(self, message: EmailMessage) -> None: ...


@dataclass(frozen=True, slots=True)
class Received:
    route: Route
    conversation_id: str | None
    leg_id: str | None = None
    duplicate: bool = False
    reply: str | None = None  # what the agent answered (None for a redelivery)
    mail: ParsedMail | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    sent: bool
    message_id: str
    error: str | None = None


class EmailService:
    def __init__(
        self,
        store: ConversationStore,
        directory: EmailDirectory,
        *,
        from_address: str | None,
        relay: Relay | None = None,
        tenant: str = "default",
        turns: VisitorTurns | None = None,
        handoffs: HandoffService | None = None,
    ) -> None:
        self._store = store
        self._directory = directory
        self._from = from_address
        self._relay = relay
        self._tenant = tenant
        self._turns = turns
        self._handoffs = handoffs
        # Routing reads the directory then appends: one mail at a time per process, so two
        # mails from a new address do not start two conversations.
        self._lock = threading.Lock()

    @property
    def directory(self) -> EmailDirectory:
        return self._directory

    # -- inbound --------------------------------------------------------------------------

    def receive(self, raw: bytes) -> Received:
        """Parses the whole message before recording anything (MalformedMailError appends
        nothing), then records it on its conversation."""
        mail = parse(raw)
        with self._lock:
            if self._directory.known(mail.message_id):
                return Received("duplicate", None, duplicate=True, mail=mail)
            try:
                return self._record(mail)
            except IdempotencyConflictError:
                return Received("duplicate", None, duplicate=True, mail=mail)

    def _record(self, mail: ParsedMail) -> Received:
        text = mail.text
        match = TOKEN_PATTERN.search(f"{mail.subject}\n{text}")
        if match is not None and self._handoffs is not None:
            text = TOKEN_PATTERN.sub("", text).strip()
            redeemed = self._redeem(match.group(0), mail, text)
            if redeemed is not None:
                return redeemed
        prelude: list[NewEvent] = []
        route: Route
        found = next(filter(None, map(self._directory.message, mail.thread_ids)), None)
        route = "reply"
        if found is None:
            found, route = self._directory.thread(mail.sender), "thread"
        if found is not None:
            cid, leg = found.conversation_id, found.leg_id
        else:
            verified = self._directory.verified_conversation(mail.sender)
            if verified is not None:
                route, cid = "verified", verified
            else:
                route, cid = "new", ids.conversation_for(mail.message_id)
                started = ConversationStarted(
                    channel="email", tenant=self._tenant, visitor_ref=subject_for(mail.sender)
                )
                prelude.append(self._event(started, mail, "started"))
            leg = ids.leg_id(cid, mail.sender)
            opened = LegOpened(channel="email", transport_ref=transport_ref(mail.sender))
            prelude.append(self._event(opened, mail, "leg", leg))
        # Built (validated) before anything is appended; recorded last, because the directory
        # treats a known Message-ID as fully recorded.
        received = self._received(mail, leg)
        if prelude:
            self._store.append_batch(cid, prelude)
        duplicate, reply = self._visitor_message(mail, cid, leg, text or NO_TEXT)
        self._store.append_batch(cid, [received])
        return Received(route, cid, leg, duplicate, None if duplicate else reply, mail)

    def _visitor_message(
        self, mail: ParsedMail, cid: str, leg: str, text: str
    ) -> tuple[bool, str | None]:
        message_id = ids.message_event_id(mail.message_id)
        if self._turns is not None:
            outcome = self._turns.visitor_turn(cid, text, leg_id=leg, message_id=message_id)
            return outcome.duplicate, outcome.reply
        said = MessagePosted(role="visitor", text=text)
        event = NewEvent("MessagePosted", said, message_id, leg, subject_for(mail.sender))
        return self._store.append_batch(cid, [event])[0].duplicate, None

    def _redeem(self, token: str, mail: ParsedMail, text: str) -> Received | None:
        """Joins the conversation a valid token names; None when the token is refused (the
        handoff service recorded why) and the mail is routed as a plain one."""
        assert self._handoffs is not None
        addressed = tokens.addressed_conversation(token)
        try:
            grant = self._handoffs.redeem(token, transport_ref(mail.sender), channel="email")
        except TokenRejectedError as exc:
            log.info("continue-by-email token refused (%s); routed as a plain mail", exc.reason)
            return None
        cid, leg = grant.conversation_id, grant.leg_id
        assert addressed is None or addressed == cid
        actor = subject_for(mail.sender)
        said = MessagePosted(role="visitor", text=text or NO_TEXT)
        answer = MessagePosted(role="agent", text=grant.first_utterance)
        batch = [
            NewEvent("MessagePosted", said, ids.message_event_id(mail.message_id), leg, actor),
            self._event(answer, mail, "first-utterance", leg, actor="agent"),
            self._received(mail, leg),
        ]
        self._store.append_batch(cid, batch)
        return Received("token", cid, leg, reply=grant.first_utterance, mail=mail)

    def _received(self, mail: ParsedMail, leg: str) -> NewEvent:
        data = EmailReceived(
            message_id=mail.message_id,
            in_reply_to=mail.in_reply_to,
            references=list(mail.references),
            sender=mail.sender,
            subject=mail.subject,
            attachments=list(mail.attachments),
        )
        return self._event(data, mail, "received", leg, actor=subject_for(mail.sender))

    @staticmethod
    def _event(
        data: EventData,
        mail: ParsedMail,
        what: str,
        leg: str | None = None,
        *,
        actor: str | None = None,
    ) -> NewEvent:
        return NewEvent(type(data).__name__, data, ids.event_id(mail.message_id, what), leg, actor)

    # -- outbound ---------------------------------------------------------------------------

    def compose_reply(self, received: Received) -> EmailMessage | None:
        """The mail carrying the agent's reply to `received`, threaded under it."""
        mail = received.mail
        if received.reply is None or mail is None or received.conversation_id is None:
            return None
        subject = mail.subject if mail.subject.lower().startswith("re:") else f"Re: {mail.subject}"
        references = [*mail.references, mail.message_id][-20:]
        reply_id = ids.event_id(mail.message_id, "reply-mail")
        return self._compose(
            mail.sender, subject.strip(), received.reply, reply_id, mail.message_id, references
        )

    def _compose(
        self,
        to: str,
        subject: str,
        text: str,
        reply_id: UUID,
        in_reply_to: str | None,
        references: Sequence[str],
    ) -> EmailMessage:
        sender = self._from or "threadline@localhost"
        message = EmailMessage()
        message["From"] = sender
        message["To"] = to
        message["Subject"] = subject
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = ids.reply_message_id(reply_id, sender.rpartition("@")[2])
        if in_reply_to:
            message["In-Reply-To"] = in_reply_to
        if references:
            message["References"] = " ".join(references)
        message.set_content(text)
        return message

    def deliver(
        self,
        conversation_id: str,
        leg_id: str | None,
        message: EmailMessage,
        *,
        message_event_id: UUID | None = None,
    ) -> Outcome:
        """Hands `message` to the relay and records the outcome (EmailSent, or
        EmailDeliveryFailed); never raises for a delivery failure. Blocking."""
        message_id = str(message["Message-ID"])
        to = str(message["To"])
        event_ref = str(message_event_id) if message_event_id else None
        error: str | None = None
        if self._relay is None or not self._from:
            error = "no relay configured (THREADLINE_SMTP_RELAY, THREADLINE_EMAIL_FROM)"
        else:
            try:
                self._relay.send(message)
            except DeliveryFailedError as exc:
                error = str(exc)[:500] or "delivery failed"
        data: EventData
        if error is None:
            data = EmailSent(
                message_id=message_id,
                in_reply_to=message["In-Reply-To"] and str(message["In-Reply-To"]),
                to=to,
                subject=str(message["Subject"] or ""),
                message_event_id=event_ref,
            )
        else:
            log.warning("email reply on %s not delivered: %s", conversation_id, error)
            data = EmailDeliveryFailed(
                message_id=message_id, to=to, error=error, message_event_id=event_ref
            )
        what = "sent" if error is None else "failed"
        event = NewEvent(type(data).__name__, data, ids.event_id(message_id, what), leg_id)
        self._store.append_batch(conversation_id, [event])
        return Outcome(error is None, message_id, error)

    def reply(self, received: Received) -> Outcome | None:
        message = self.compose_reply(received)
        if message is None or received.conversation_id is None:
            return None
        return self.deliver(received.conversation_id, received.leg_id, message)

    def send(self, conversation_id: str, text: str, *, event_id: UUID) -> Outcome:
        """An operator's (or any) message into the conversation's email thread: records it
        (MessagePosted role=human, id `event_id`) and mails it under the latest mail."""
        latest = self._directory.latest_mail(conversation_id)
        if latest is None:
            raise DeliveryFailedError(f"conversation {conversation_id} has no email thread")
        thread = latest[0]
        posted = NewEvent(
            "MessagePosted", MessagePosted(role="human", text=text), event_id, thread.leg_id
        )
        self._store.append_batch(conversation_id, [posted])
        return self.mail_posted(conversation_id, text, event_id=event_id)

    def has_thread(self, conversation_id: str) -> bool:
        return self._directory.latest_mail(conversation_id) is not None

    def mail_posted(self, conversation_id: str, text: str, *, event_id: UUID) -> Outcome:
        """Mails a message already recorded as `event_id` (an operator's MessagePosted) under
        the conversation's latest mail; records only the delivery (EmailSent/Failed)."""
        latest = self._directory.latest_mail(conversation_id)
        if latest is None:
            raise DeliveryFailedError(f"conversation {conversation_id} has no email thread")
        thread, to, last_id = latest
        message = self._compose(to, "Re: your message", text, event_id, last_id, [last_id])
        return self.deliver(conversation_id, thread.leg_id, message, message_event_id=event_id)
