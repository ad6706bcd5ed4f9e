"""Energy-based voice activity detection.

Why energy and not a model: the offline stack must run anywhere with no weights to fetch, and
browser audio with noise suppression on is clean enough that RMS level separates speech from
silence. The thresholds below are the documented defaults:

- a 20 ms frame is *voiced* when its RMS level is above `threshold_dbfs` (-40 dBFS; speech
  from a headset or espeak-ng sits around -25..-15 dBFS, a quiet room with browser noise
  suppression below -55 dBFS);
- speech *starts* after `start_ms` (60 ms) of consecutive voiced frames, so clicks and pops
  do not open a turn; the utterance keeps `preroll_ms` (200 ms) before that point so that
  soft onsets (/k/, /h/) reach the recogniser;
- speech *ends* after `end_silence_ms` (600 ms) of unvoiced frames: long enough to bridge
  the pauses between words and clauses, short enough to keep the reply latency low;
- utterances shorter than `min_speech_ms` (150 ms of voiced audio) are dropped, and one
  longer than `max_utterance_ms` (20 s) is cut so memory and decode time stay bounded.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np

from threadline.channels.voice.ports import SAMPLE_WIDTH, SpeechEnded, SpeechStarted, VadEvent

FRAME_MS = 20


@dataclass(frozen=True, slots=True)
class VadConfig:
    threshold_dbfs: float = -40.0
    start_ms: int = 60
    end_silence_ms: int = 600
    preroll_ms: int = 200
    min_speech_ms: int = 150
    max_utterance_ms: int = 20_000


def rms_dbfs(pcm: bytes) -> float:
    """RMS level of s16 PCM relative to full scale; -inf for digital silence."""
    if not pcm:
        return -math.inf
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    rms = float(np.sqrt(np.mean(samples * samples)))
    return 20.0 * math.log10(rms / 32768.0) if rms > 0 else -math.inf


class EnergyVad:
    def __init__(self, sample_rate: int = 16_000, config: VadConfig | None = None) -> None:
        self.sample_rate = sample_rate
        self.config = config or VadConfig()
        self._frame_bytes = sample_rate * FRAME_MS // 1000 * SAMPLE_WIDTH
        self._pending = b""
        self._frames_seen = 0  # media clock, in frames
        # The onset frames themselves plus `preroll_ms` before them.
        self._preroll: deque[bytes] = deque(
            maxlen=(self.config.preroll_ms + self.config.start_ms) // FRAME_MS
        )
        self._run = 0  # consecutive voiced frames while idle
        self._in_speech = False
        self._utterance: list[bytes] = []
        self._start_frame = 0
        self._voiced = 0
        self._silence = 0
        self._speculated = False  # an early snapshot was taken in this silence run
        self.ended_key: tuple[int, int] | None = None  # `speculate` key of the last SpeechEnded

    @property
    def in_speech(self) -> bool:
        return self._in_speech

    def feed(self, pcm: bytes) -> list[VadEvent]:
        events: list[VadEvent] = []
        data = self._pending + pcm
        usable = len(data) - len(data) % self._frame_bytes
        self._pending = data[usable:]
        for offset in range(0, usable, self._frame_bytes):
            event = self._frame(data[offset : offset + self._frame_bytes])
            if event is not None:
                events.append(event)
        return events

    def flush(self) -> list[VadEvent]:
        if not self._in_speech:
            return []
        event = self._finish(self._frames_seen)
        return [event] if event is not None else []

    def speculate(self, after_ms: int) -> tuple[tuple[int, int], bytes] | None:
        """The utterance so far, once per pause, when speech has paused for `after_ms`: the
        caller may start recognising it while the end-of-speech wait runs. The key equals
        `ended_key` after the SpeechEnded for this utterance iff no speech came after the
        snapshot (so the snapshot holds every voiced frame of the final utterance)."""
        if not self._in_speech or self._speculated or self._silence * FRAME_MS < after_ms:
            return None
        self._speculated = True
        return (self._start_frame, self._voiced), b"".join(self._utterance)

    def is_voiced(self, frame: bytes) -> bool:
        """One 20 ms frame's decision; the state machine around it is the same for every
        detector (subclasses replace only this)."""
        return rms_dbfs(frame) > self.config.threshold_dbfs

    def _frame(self, frame: bytes) -> VadEvent | None:
        cfg = self.config
        voiced = self.is_voiced(frame)
        index = self._frames_seen
        self._frames_seen += 1
        if not self._in_speech:
            self._preroll.append(frame)
            self._run = self._run + 1 if voiced else 0
            if self._run * FRAME_MS < cfg.start_ms:
                return None
            self._in_speech = True
            self._utterance = list(self._preroll)
            self._start_frame = index + 1 - len(self._preroll)
            self._voiced = self._run
            self._silence = 0
            self._preroll.clear()
            return SpeechStarted(start_ms=self._start_frame * FRAME_MS)
        self._utterance.append(frame)
        if voiced:
            self._voiced += 1
            self._silence = 0
            self._speculated = False
        else:
            self._silence += 1
        too_long = len(self._utterance) * FRAME_MS >= cfg.max_utterance_ms
        if self._silence * FRAME_MS >= cfg.end_silence_ms or too_long:
            return self._finish(index + 1)
        return None

    def _finish(self, end_frame: int) -> SpeechEnded | None:
        # Trailing silence beyond a short tail only slows the decoder down.
        keep_tail = max(0, self._silence - 10)
        frames = self._utterance[: len(self._utterance) - keep_tail]
        voiced_ms = self._voiced * FRAME_MS
        self.ended_key = (self._start_frame, self._voiced)
        self._speculated = False
        self._in_speech = False
        self._utterance = []
        self._run = 0
        if voiced_ms < self.config.min_speech_ms:
            return None
        return SpeechEnded(
            pcm=b"".join(frames),
            start_ms=self._start_frame * FRAME_MS,
            end_ms=(end_frame - keep_tail) * FRAME_MS,
        )
