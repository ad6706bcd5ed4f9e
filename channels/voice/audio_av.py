"""PyAV (libswresample) resampling: the only file besides `webrtc.py` that imports `av`."""

from __future__ import annotations

from typing import Any

import av
import numpy as np


class Resampler:
    """Stateful converter of any PyAV audio frame, or mono s16 PCM, to mono s16 at `rate`.

    Stateful on purpose: libswresample keeps filter history between calls, so a stream fed in
    20 ms pieces is resampled without clicks at the seams."""

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)

    def frame(self, frame: Any) -> bytes:
        out = self._resampler.resample(frame)
        return b"".join(_plane_bytes(f) for f in out)

    def pcm(self, pcm: bytes, sample_rate: int) -> bytes:
        samples = np.frombuffer(pcm, dtype="<i2").reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format="s16", layout="mono")
        frame.sample_rate = sample_rate
        return self.frame(frame)

    def flush(self) -> bytes:
        return b"".join(_plane_bytes(f) for f in self._resampler.resample(None))


def _plane_bytes(frame: Any) -> bytes:
    return bytes(frame.planes[0])[: frame.samples * 2]


def resample(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """One-shot conversion of a whole clip of mono s16 PCM."""
    if from_rate == to_rate or not pcm:
        return pcm
    converter = Resampler(to_rate)
    return converter.pcm(pcm, from_rate) + converter.flush()
