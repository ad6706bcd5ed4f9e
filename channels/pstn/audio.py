"""PCM helpers between the 8 kHz telephone side and the voice pipeline's 16 kHz input.
Pure Python on 160-sample frames: cheap enough at 50 frames/s, no vendor code."""

from __future__ import annotations

import sys
from array import array

TELEPHONE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = TELEPHONE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)


def _samples(pcm: bytes) -> array[int]:
    data = array("h")
    data.frombytes(pcm[: len(pcm) - len(pcm) % 2])
    if sys.byteorder == "big":
        data.byteswap()
    return data


def _bytes(data: array[int]) -> bytes:
    if sys.byteorder == "big":
        data.byteswap()
    return data.tobytes()


def upsample_2x(pcm: bytes, previous: int = 0) -> tuple[bytes, int]:
    """8 kHz s16le -> 16 kHz s16le by linear interpolation. `previous` is the last sample of
    the previous chunk (continuity across frames); returns (audio, last sample)."""
    src = _samples(pcm)
    out = array("h", bytes(len(src) * 4))
    prev = previous
    for i, sample in enumerate(src):
        out[2 * i] = (prev + sample) // 2
        out[2 * i + 1] = sample
        prev = sample
    return _bytes(out), prev


def fit_frame(pcm: bytes) -> bytes:
    """Exactly one 20 ms frame at 8 kHz: pads with silence or truncates."""
    if len(pcm) == FRAME_BYTES:
        return pcm
    return (pcm + SILENCE)[:FRAME_BYTES]
