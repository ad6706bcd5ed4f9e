"""SIP user agent on aiosipua (leaf adapter: the only module that imports it).

UDP, one socket for both directions: outbound INVITEs to the trunk (dial-out) and inbound
INVITEs (calls to Threadline). aiosipua does the transaction work (retransmissions, ACK,
BYE handling, dialog state); this file maps it onto `ports.SipAgent`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from aiosipua import SipUAC, SipUAS, negotiate_sdp, parse_sdp
from aiosipua.incoming_call import IncomingCall
from aiosipua.message import SipRequest
from aiosipua.sdp import SdpMessage
from aiosipua.transport import UdpSipTransport

from threadline.channels.messaging import phone
from threadline.channels.messaging.errors import InvalidPhoneNumberError
from threadline.channels.pstn.errors import CallFailedError
from threadline.channels.pstn.ports import (
    Address,
    CallHandle,
    CallStarted,
    IncomingInvite,
    InviteHandler,
    MediaOffer,
)

log = logging.getLogger(__name__)

CODEC_NAMES = {0: "PCMU", 8: "PCMA"}


class _Protocol(asyncio.DatagramProtocol):
    """aiosipua's own protocol asserts `isinstance(t, asyncio.DatagramTransport)`, which is
    false for the selector loop's UDP transport on Python 3.11: deliver datagrams without it."""

    def __init__(self, owner: _UdpTransport) -> None:
        self._owner = owner

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._owner._dispatch(data, (str(addr[0]), int(addr[1])))

    def error_received(self, exc: Exception) -> None:
        log.warning("SIP UDP error: %s", exc)


class _UdpTransport(UdpSipTransport):
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _Protocol(self), local_addr=self.local_addr
        )
        self._udp_transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.local_addr = (str(host), int(port))  # resolves port 0


def sdp_offer(host: str, rtp_port: int, codecs: tuple[int, ...], session_id: int) -> str:
    formats = " ".join(str(pt) for pt in codecs)
    lines = [
        "v=0",
        f"o=threadline {session_id} {session_id} IN IP4 {host}",
        "s=threadline",
        f"c=IN IP4 {host}",
        "t=0 0",
        f"m=audio {rtp_port} RTP/AVP {formats}",
        *(f"a=rtpmap:{pt} {CODEC_NAMES[pt]}/8000" for pt in codecs),
        "a=ptime:20",
        "a=sendrecv",
    ]
    return "\r\n".join(lines) + "\r\n"


def chosen_media(sdp: SdpMessage | None, codecs: tuple[int, ...]) -> MediaOffer | None:
    """The far end's RTP address and the first of its payload types we support."""
    if sdp is None or sdp.audio is None or sdp.rtp_address is None:
        return None
    for fmt in sdp.audio.formats:
        if fmt.isdigit() and int(fmt) in codecs:
            host, port = sdp.rtp_address
            return MediaOffer((host, port), int(fmt))
    return None


def _caller(call: IncomingCall) -> str | None:
    user = call.invite.from_addr.uri.user if call.invite.from_addr else None
    if not user:
        return None
    try:
        return phone.normalize(user)
    except InvalidPhoneNumberError:
        return None


class AiosipuaAgent:
    def __init__(
        self,
        host: str,
        port: int,
        *,
        from_user: str = "threadline",
        codecs: tuple[int, ...] = (0, 8),
        on_invite: InviteHandler | None = None,
        on_call: CallStarted | None = None,
    ) -> None:
        self._transport = _UdpTransport(local_addr=(host, port))
        self._uac = SipUAC(self._transport)
        self._uas = SipUAS(self._transport, uac=self._uac)
        self._from_user = from_user
        self._codecs = codecs
        self._on_invite = on_invite
        self._on_call = on_call
        self._calls: dict[str, CallHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._session = 0

    @property
    def address(self) -> Address:
        return self._transport.local_addr

    async def start(self) -> None:
        self._uas.on_bye = self._bye
        self._uas.on_invite = self._invite
        await self._uas.start()

    async def stop(self) -> None:
        for handle in list(self._calls.values()):
            handle.hangup()
            handle.mark_ended("shutdown")
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._uas.stop()

    # -- outbound ---------------------------------------------------------------------------

    async def dial(
        self,
        number: str,
        trunk: Address,
        *,
        headers: Mapping[str, str],
        local_rtp: Address,
        codecs: tuple[int, ...],
        timeout_s: float,
    ) -> CallHandle:
        self._session += 1
        offer = parse_sdp(sdp_offer(local_rtp[0], local_rtp[1], codecs, self._session))
        host, port = self.address
        call = self._uac.send_invite(
            f"sip:{self._from_user}@{host}:{port}",
            f"sip:{number}@{trunk[0]}:{trunk[1]}",
            trunk,
            sdp_offer=offer,
            extra_headers=dict(headers),
            user_agent="Threadline",
        )
        try:
            await call.wait_answered(timeout=timeout_s)
        except TimeoutError:
            self._uac.send_cancel(call)
            raise CallFailedError("no answer") from None
        except RuntimeError:
            code, reason = call._reject_code, call._reject_reason
            raise CallFailedError(f"rejected: {code} {reason}", code) from None
        media = chosen_media(call.sdp_answer, codecs)
        if media is None:
            call.hangup(self._uac)
            raise CallFailedError("the answer has no G.711 audio we offered")
        handle = CallHandle(call.call_id, media, hangup=lambda: self._hangup_outbound(call.call_id))
        self._calls[call.call_id] = handle
        return handle

    def _hangup_outbound(self, call_id: str) -> None:
        call = self._uac.get_call(call_id)
        if call is not None:
            call.hangup(self._uac)
            self._uac.remove_call(call_id)
        handle = self._calls.pop(call_id, None)
        if handle is not None:
            handle.mark_ended("local hangup")

    # -- inbound ----------------------------------------------------------------------------

    def _invite(self, call: IncomingCall) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(call))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, call: IncomingCall) -> None:
        headers = {
            name.lower(): values[0] for name, values in call.invite.headers.items() if values
        }
        invite = IncomingInvite(
            call.call_id, _caller(call), headers, chosen_media(call.sdp_offer, self._codecs)
        )
        if invite.media is None or call.sdp_offer is None:
            call.reject(488, "Not Acceptable Here")
            return
        local = await self._on_invite(invite) if self._on_invite else None
        if local is None:
            call.reject(403, "Forbidden")
            return
        answer, _ = negotiate_sdp(
            offer=call.sdp_offer,
            local_ip=local[0],
            rtp_port=local[1],
            supported_codecs=[invite.media.payload_type],
        )
        call.accept(answer)
        handle = CallHandle(call.call_id, invite.media, hangup=lambda: self._hangup_inbound(call))
        self._calls[call.call_id] = handle
        if self._on_call is not None:
            await self._on_call(invite, handle)

    def _hangup_inbound(self, call: IncomingCall) -> None:
        call.hangup()
        handle = self._calls.pop(call.call_id, None)
        if handle is not None:
            handle.mark_ended("local hangup")

    def _bye(self, call: IncomingCall, request: SipRequest) -> None:
        handle = self._calls.pop(call.call_id, None)
        if handle is not None:
            handle.mark_ended("remote hangup")
