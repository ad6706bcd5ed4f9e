"""The live operator bridges of one process (channels/voice/bridge.py), by conversation:
what the console's /call routes use. aiortc is imported only when a bridge is made, so
creating the app stays as light as before voice is used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from threadline.channels.voice.errors import CallNotBridgeableError

if TYPE_CHECKING:
    from threadline.channels.voice.bridge import CallBridge
    from threadline.channels.voice.webrtc import IceConfig, WebRtcLeg


class CallBridges:
    """The live bridges of one process, by conversation; one person per call."""

    def __init__(
        self, legs: dict[str, WebRtcLeg], *, ice: Callable[[], IceConfig] | None = None
    ) -> None:
        self._legs = legs  # VoiceSessions.legs: leg id -> live leg
        self._ice = ice
        self._bridges: dict[str, CallBridge] = {}
        self._lock = asyncio.Lock()

    def live_leg(self, conversation_id: str) -> WebRtcLeg | None:
        for leg in list(self._legs.values()):
            if leg.conversation_id == conversation_id and leg.closed_reason is None:
                return leg
        return None

    def bridged(self, conversation_id: str) -> CallBridge | None:
        return self._bridges.get(conversation_id)

    async def join(
        self, conversation_id: str, operator: str, sdp: str, sdp_type: str
    ) -> tuple[str, str]:
        """(leg id, answer SDP)."""
        async with self._lock:
            if conversation_id in self._bridges:
                raise CallNotBridgeableError("a person is already on this call")
            leg = self.live_leg(conversation_id)
            if leg is None:
                raise CallNotBridgeableError("the visitor is not on a voice call")
            from threadline.channels.voice.bridge import CallBridge

            bridge = CallBridge(leg, operator, ice=self._ice() if self._ice else None)
            answer = await bridge.join(sdp, sdp_type)
            self._bridges[conversation_id] = bridge
            return leg.leg_id, answer

    async def leave(self, conversation_id: str) -> tuple[str, str] | None:
        """Hands the call back to the AI: (leg id, operator), or None when nobody was on."""
        async with self._lock:
            bridge = self._bridges.pop(conversation_id, None)
        if bridge is None:
            return None
        await bridge.leave()
        return bridge.leg.leg_id, bridge.operator
