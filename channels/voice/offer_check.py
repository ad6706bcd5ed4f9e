"""Whether a browser's SDP offer can be answered, decided before anything is redeemed.

The answer is what would later fail, so the check *is* an answer: a throwaway peer
connection takes the offer and drafts an answer (no ICE gathering, no media), then closes.
A request whose offer fails here is refused with nothing recorded and its handoff token
unspent. aiortc is imported only when the first offer is checked.
"""

from __future__ import annotations

from threadline.channels.voice.errors import InvalidOfferError

# What aiortc raises on an offer it cannot negotiate (parsing is assert-heavy).
_REFUSALS = (ValueError, TypeError, AssertionError, IndexError, KeyError, AttributeError)


async def check_offer(sdp: str) -> None:
    """Raises InvalidOfferError if no answer can be made to `sdp`."""
    from aiortc import RTCPeerConnection, RTCSessionDescription

    pc = RTCPeerConnection()
    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        if not any(t.kind == "audio" for t in pc.getTransceivers()):
            raise InvalidOfferError("the offer has no audio section")
        await pc.createAnswer()
    except _REFUSALS as exc:
        raise InvalidOfferError(f"cannot answer this offer: {exc or type(exc).__name__}") from None
    finally:
        await pc.close()
