"""Neural voice activity detection: Silero VAD v6 (ONNX) on onnxruntime, no torch.

The model file is the one faster-whisper ships (`faster_whisper/assets/silero_vad_v6.onnx`,
MIT): the `silero-vad` package itself declares torch, a multi-GB dependency, so it is not
used. The model scores 512-sample (32 ms) windows at 16 kHz, with 64 samples of context
and a recurrent state carried between calls; a 20 ms frame is *voiced* when the latest score
is above `threshold` (0.5, Silero's default). The start/end/pre-roll rules are EnergyVad's
(`vad.py`), so both detectors cut utterances the same way. Unlike an RMS level, the score
does not open a turn on a door slam or keyboard noise, and barge-in follows speech only.

One onnxruntime session per process (thread-safe for `run`); state per detector.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from threadline.channels.voice.errors import ProviderUnavailableError
from threadline.channels.voice.vad import EnergyVad, VadConfig

WINDOW = 512
CONTEXT = 64
_session: Any = None


def model_path() -> Path:
    try:
        import faster_whisper
    except ImportError:
        raise ProviderUnavailableError("silero VAD needs faster-whisper's bundled model") from None
    path = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise ProviderUnavailableError(f"no Silero VAD model at {path}")
    return path


def _load() -> Any:
    global _session
    if _session is None:
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.inter_op_num_threads = 1
        options.intra_op_num_threads = 1  # tiny model: threads cost more than they save
        options.log_severity_level = 4
        _session = onnxruntime.InferenceSession(
            str(model_path()), providers=["CPUExecutionProvider"], sess_options=options
        )
    return _session


class SileroVad(EnergyVad):
    def __init__(
        self, sample_rate: int = 16_000, config: VadConfig | None = None, threshold: float = 0.5
    ) -> None:
        if sample_rate != 16_000:
            raise ValueError("Silero VAD runs at 16 kHz here")
        super().__init__(sample_rate, config)
        self.threshold = threshold
        self._session = _load()
        self._samples = np.zeros(0, dtype=np.float32)
        self._context = np.zeros(CONTEXT, dtype=np.float32)
        self._h = np.zeros((1, 1, 128), dtype=np.float32)
        self._c = np.zeros((1, 1, 128), dtype=np.float32)
        self.probability = 0.0

    def is_voiced(self, frame: bytes) -> bool:
        audio = np.frombuffer(frame, dtype="<i2").astype(np.float32) / 32768.0
        self._samples = np.concatenate([self._samples, audio])
        while len(self._samples) >= WINDOW:
            window, self._samples = self._samples[:WINDOW], self._samples[WINDOW:]
            batch = np.concatenate([self._context, window]).reshape(1, -1)
            out, self._h, self._c = self._session.run(
                None, {"input": batch, "h": self._h, "c": self._c}
            )
            self._context = window[-CONTEXT:]
            self.probability = float(np.asarray(out).reshape(-1)[0])
        return self.probability > self.threshold
