"""PCM helpers between the 8 kHz telephone side and the voice pipeline's 16 kHz input.
numpy on 160-sample frames: cheap at 50 frames/s, no vendor code."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

TELEPHONE_RATE = 8000
FRAME_MS = 20
FRAME_SAMPLES = TELEPHONE_RATE * FRAME_MS // 1000  # 160
FRAME_BYTES = FRAME_SAMPLES * 2
SILENCE = bytes(FRAME_BYTES)


def _lowpass(taps: int, cutoff: float) -> npt.NDArray[np.float64]:
    """Kaiser-windowed sinc, `cutoff` as a fraction of the output rate, DC gain 2 (zero
    stuffing halves the level)."""
    n = np.arange(taps) - (taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(taps, 8.0)
    kernel: npt.NDArray[np.float64] = h * (2.0 / h.sum())
    return kernel


# 3.8 kHz at 16 kHz: passes the telephone band (300-3400 Hz), removes the 4-8 kHz image
# that linear interpolation leaves (-60 dB stop band with 63 taps).
_FIR = _lowpass(63, 3800 / 16_000)


class Upsampler2x:
    """8 kHz s16le -> 16 kHz s16le, band-limited (zero stuffing + a 63-tap FIR), stateful so
    a stream fed in 20 ms frames has no seams. Delay: 31 samples at 16 kHz (2 ms).

    Why not linear interpolation: its images of the 0.3-3.4 kHz band at 4.6-7.7 kHz reach the
    recogniser as hiss and cost Whisper words at 8 kHz."""

    def __init__(self) -> None:
        self._history = np.zeros(len(_FIR) - 1)

    def __call__(self, pcm: bytes) -> bytes:
        src = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
        if not src.size:
            return b""
        stuffed = np.zeros(2 * src.size)
        stuffed[0::2] = src
        buffer = np.concatenate([self._history, stuffed])
        self._history = buffer[-(len(_FIR) - 1) :]
        out = np.convolve(buffer, _FIR, mode="valid")
        return np.clip(np.rint(out), -32768, 32767).astype("<i2").tobytes()


def fit_frame(pcm: bytes) -> bytes:
    """Exactly one 20 ms frame at 8 kHz: pads with silence or truncates."""
    if len(pcm) == FRAME_BYTES:
        return pcm
    return (pcm + SILENCE)[:FRAME_BYTES]
