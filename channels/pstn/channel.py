"""PSTN legs of a conversation: dial-out through the SIP trunk and inbound calls.

Dial-out (`dial`): the handoff service records the offer and acceptance (channel=pstn);
the INVITE goes to `sip:+NUMBER@trunk` with `X-Threadline-Conversation-Id` and a signed,
single-use `X-Threadline-Handoff-Token` (SIP headers are untrusted metadata: the token is
what an answering system trusts). On answer the leg redeems the token: LegOpened(pstn),
IdentityVerified(handoff_token) at the chat's level, HandoffCompleted with the first
utterance generated from the replayed history; the voice pipeline speaks it (AgentSpoke)
and runs the call over G.711 RTP; BYE from either side closes the leg (LegClosed). No
answer or a rejection records HandoffDeclined.

Inbound (`on_invite`): a valid handoff token in the INVITE attaches the call to its
conversation at the token's level (IdentityVerified method=handoff_token); otherwise the
caller's ANI matched to a conversation's verified phone attaches it with no identity event
(already verified: nothing is asked again); otherwise the call is refused (403).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from threadline.channels.messaging import phone
from threadline.channels.messaging.directory import PhoneDirectory
from threadline.channels.pstn.errors import (
    CallFailedError,
    ConversationClosedError,
    NoPhoneNumberError,
    TrunkNotConfiguredError,
)
from threadline.channels.pstn.media import MediaBridge, release_rtp_port, reserve_rtp_port
from threadline.channels.pstn.ports import (
    Address,
    CallHandle,
    IncomingInvite,
    MediaOpener,
    SipAgent,
    VoiceLegFactory,
)
from threadline.channels.pstn.settings import PstnSettings
from threadline.handoff.errors import HandoffError, TokenRejectedError
from threadline.handoff.first_utterance import Utterance
from threadline.handoff.service import HandoffService, HandoffTicket, new_leg_id
from threadline.ledger.envelope import NewEvent
from threadline.ledger.events import LegOpened

if TYPE_CHECKING:
    from threadline.projections.context_model import AgentContext

log = logging.getLogger(__name__)

CONVERSATION_HEADER = "X-Threadline-Conversation-Id"
TOKEN_HEADER = "X-Threadline-Handoff-Token"  # noqa: S105 -- a header name
TELEPHONE_RATE = 8000


@dataclass(frozen=True, slots=True)
class DialStarted:
    conversation_id: str
    handoff_id: str
    number: str
    token: str  # also sent in the INVITE; the caller of the API may already hold it
    expires_at: str
    level: int


@dataclass
class _Pending:
    conversation_id: str
    leg_id: str
    port: int
    first_utterance: str
    context: AgentContext


class PstnChannel:
    def __init__(
        self,
        settings: PstnSettings,
        handoffs: HandoffService,
        directory: PhoneDirectory,
        *,
        voice: VoiceLegFactory,
        sip: SipAgent | None = None,
        open_media: MediaOpener | None = None,
    ) -> None:
        self.settings = settings
        self._handoffs = handoffs
        self._directory = directory
        self._voice = voice
        self._sip = sip
        self._open_media = open_media
        self._tasks: set[asyncio.Task[None]] = set()
        self._inbound: dict[str, _Pending] = {}
        self.completed: list[str] = []  # leg ids whose call has ended (for tests and stats)
        self.media_stats: dict[str, tuple[int, int]] = {}  # leg id -> (RTP frames out, in)

    # -- life cycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Binds the SIP listener; the libraries are imported here, not at import time."""
        if self._sip is None:
            from threadline.channels.pstn.sip_aiosipua import AiosipuaAgent

            self._sip = AiosipuaAgent(
                self.settings.sip_host,
                self.settings.sip_port,
                from_user=self.settings.from_user,
                codecs=self.settings.codecs,
                on_invite=self.on_invite,
                on_call=self.on_call,
            )
        if self._open_media is None:
            from threadline.channels.pstn.rtp_aiortp import open_stream

            self._open_media = open_stream
        await self._sip.start()

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._sip is not None:
            await self._sip.stop()

    async def wait_idle(self) -> None:
        """Until every call task has finished (tests, graceful shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- dial-out ---------------------------------------------------------------------------

    async def dial(self, conversation_id: str, number: str | None = None) -> DialStarted:
        """Records the handoff (offer/acceptance) and starts the call in the background."""
        trunk = self.settings.trunk_address()
        if trunk is None:
            raise TrunkNotConfiguredError("THREADLINE_PSTN_TRUNK is not set")
        # The directory catches up on the global log (a store read): off the event loop,
        # which carries other calls' RTP.
        if not await asyncio.to_thread(self._directory.is_open, conversation_id):
            raise ConversationClosedError(f"conversation {conversation_id} is not open")
        if number:
            target: str | None = phone.normalize(number)
        else:
            target = await asyncio.to_thread(self._directory.verified_phone, conversation_id)
        if target is None:
            raise NoPhoneNumberError("no number given and the conversation has no verified phone")
        ticket = await asyncio.to_thread(self._handoffs.request_handoff, conversation_id, "pstn")
        self._spawn(self._call_out(ticket, target, trunk))
        return DialStarted(
            conversation_id,
            ticket.handoff_id,
            target,
            ticket.token,
            ticket.expires_at.isoformat(),
            ticket.level,
        )

    async def _call_out(self, ticket: HandoffTicket, number: str, trunk: Address) -> None:
        assert self._sip is not None
        settings = self.settings
        cid = ticket.conversation_id
        port = reserve_rtp_port(settings.rtp_host, settings.rtp_port_min, settings.rtp_port_max)
        try:
            handle = await self._sip.dial(
                number,
                trunk,
                headers={CONVERSATION_HEADER: cid, TOKEN_HEADER: ticket.token},
                local_rtp=(settings.rtp_host, port),
                codecs=settings.codecs,
                timeout_s=settings.answer_timeout_s,
            )
        except CallFailedError as exc:
            release_rtp_port(port)
            reason = exc.reason[:200]
            await asyncio.to_thread(self._handoffs.decline, cid, ticket.handoff_id, reason=reason)
            return
        except BaseException:
            release_rtp_port(port)
            raise
        ref = f"tel:{number};call-id={handle.call_id}"[:500]
        try:
            # The answering side is ours: the leg presents the ticket's token, which opens it
            # at the level verified in chat and yields the first utterance from the replay.
            grant = await asyncio.to_thread(
                self._handoffs.redeem, ticket.token, ref, conversation_id=cid, channel="pstn"
            )
        except HandoffError as exc:
            log.warning("pstn handoff %s not redeemed: %s", ticket.handoff_id, exc)
            handle.hangup()
            release_rtp_port(port)
            return
        await self._run_leg(cid, grant.leg_id, handle, port, grant.first_utterance, grant.context)

    # -- inbound ----------------------------------------------------------------------------

    async def on_invite(self, invite: IncomingInvite) -> Address | None:
        """Which conversation an inbound call joins (None refuses it with 403)."""
        token = invite.headers.get(TOKEN_HEADER.lower())
        ref = f"tel:{invite.caller or 'unknown'};call-id={invite.call_id}"[:500]
        if token:
            try:
                grant = await asyncio.to_thread(
                    self._handoffs.redeem,
                    token,
                    ref,
                    conversation_id=invite.headers.get(CONVERSATION_HEADER.lower()),
                    channel="pstn",
                    inbound=True,
                )
            except TokenRejectedError:
                return None  # recorded as VerificationFailed by the handoff service
            cid, leg_id, first = grant.conversation_id, grant.leg_id, grant.first_utterance
            context = grant.context
        else:
            found = (
                await asyncio.to_thread(self._directory.verified_conversation, invite.caller)
                if invite.caller
                else None
            )
            if found is None:
                return None
            cid, leg_id = found, new_leg_id()
            made, context = await asyncio.to_thread(self._first_for, cid)
            first = made.text
            # The caller's number is the conversation's verified one: no identity event, no
            # challenge, the leg is simply part of the verified conversation. A model
            # fallback for the first utterance is recorded with the leg.
            opened = LegOpened(channel="pstn", transport_ref=ref)
            batch = [NewEvent("LegOpened", opened, leg_id=leg_id)]
            batch += [NewEvent(t, d, leg_id=leg_id, actor="agent") for t, d in made.events]
            await asyncio.to_thread(self._handoffs.ledger.append_batch, cid, batch)
        settings = self.settings
        port = reserve_rtp_port(settings.rtp_host, settings.rtp_port_min, settings.rtp_port_max)
        self._inbound[invite.call_id] = _Pending(cid, leg_id, port, first, context)
        return (settings.rtp_host, port)

    def _first_for(self, conversation_id: str) -> tuple[Utterance, AgentContext]:
        context = self._handoffs.context(conversation_id)
        made = self._handoffs.utterances.compose(
            context,
            level=context.verification.level,
            reason=None,
            channel="pstn",
            inbound=True,
        )
        return made, context

    async def on_call(self, invite: IncomingInvite, handle: CallHandle) -> None:
        pending = self._inbound.pop(invite.call_id, None)
        if pending is None:
            handle.hangup()
            return
        self._spawn(
            self._run_leg(
                pending.conversation_id,
                pending.leg_id,
                handle,
                pending.port,
                pending.first_utterance,
                pending.context,
            )
        )

    # -- the call ---------------------------------------------------------------------------

    async def _run_leg(
        self,
        conversation_id: str,
        leg_id: str,
        handle: CallHandle,
        port: int,
        first: str,
        context: AgentContext,
    ) -> None:
        assert self._open_media is not None
        leg = self._voice(conversation_id, leg_id, TELEPHONE_RATE, context)
        stream = None
        reason = "ended"
        try:
            stream = await self._open_media((self.settings.rtp_host, port), handle.media)
            leg.start()
            bridge = MediaBridge(stream, leg, media_timeout_s=self.settings.media_timeout_s)
            runner = asyncio.get_running_loop().create_task(bridge.run(handle.ended))
            await leg.say(first)
            timeout_reason = await runner
            if timeout_reason:
                handle.hangup()
                reason = timeout_reason
            else:
                reason = handle.end_reason or "ended"
            self.media_stats[leg_id] = (bridge.frames_out, bridge.frames_in)
            log.info(
                "pstn leg %s ended (%s): %d frames out, %d in",
                leg_id,
                reason,
                bridge.frames_out,
                bridge.frames_in,
            )
        finally:
            await leg.close(reason)
            if stream is not None:
                await stream.close()
            release_rtp_port(port)
            self.completed.append(leg_id)
