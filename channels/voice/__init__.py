"""The WebRTC voice leg: audio in → VAD → STT → agent turn → TTS → audio out.

Ports (`ports.py`) are small interfaces; providers are one leaf file each (`stt_*.py`,
`tts_*.py`); aiortc lives only in `webrtc.py`, PyAV in `audio_av.py` and `webrtc.py`. Importing this
package does no I/O and loads no vendor SDK.
"""
