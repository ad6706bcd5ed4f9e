"""PSTN legs: dial-out through a SIP trunk and inbound calls, carrying the same voice
pipeline as WebRTC over G.711 RTP. The SIP and RTP libraries (aiosipua, aiortp) are fenced
in `sip_aiosipua.py` and `rtp_aiortp.py`, loaded lazily by `bootstrap_pstn`."""
