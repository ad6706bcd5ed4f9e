"""Offline text-to-speech with the espeak-ng binary (Debian package `espeak-ng`).

espeak-ng writes 22,050 Hz mono WAV in ~20 ms for a sentence and cannot write other rates, so
the output is resampled with PyAV. The text is passed as an argument, never through a shell.
"""

from __future__ import annotations

import asyncio
import io
import shutil
import subprocess
import wave

from threadline.channels.voice.errors import ProviderUnavailableError, TextToSpeechError

_TIMEOUT_S = 10.0
# The fallback's voice, chosen for the recogniser (docs/voice.md, "The espeak-ng fallback
# voice"): the Klatt synthesiser variant at a slower rate is what whisper tiny.en hears best,
# at 16 kHz and above all at 8 kHz. Tuned on benchmarks/espeak_grid.py's own sentences.
DEFAULT_VOICE = "en-us+klatt2"
DEFAULT_WORDS_PER_MINUTE = 130
DEFAULT_WORD_GAP = 2  # 20 ms between words: fewer words run together for the recogniser


class EspeakTTS:
    name = "espeak"

    def __init__(
        self,
        voice: str = DEFAULT_VOICE,
        words_per_minute: int = DEFAULT_WORDS_PER_MINUTE,
        *,
        pitch: int = 50,
        word_gap: int = DEFAULT_WORD_GAP,
        amplitude: int = 100,
    ) -> None:
        self.voice = voice
        self.words_per_minute = words_per_minute
        self.pitch = pitch  # espeak-ng -p, 0..99
        self.word_gap = word_gap  # espeak-ng -g, in units of 10 ms at the default speed
        self.amplitude = amplitude  # espeak-ng -a, 0..200

    async def synthesize(self, text: str, sample_rate: int) -> bytes:
        binary = shutil.which("espeak-ng")
        if binary is None:
            raise ProviderUnavailableError("espeak-ng is not installed (scripts/sysdeps.sh)")
        if not text.strip():
            return b""
        command = [
            binary,
            *("-v", self.voice, "-s", str(self.words_per_minute), "-p", str(self.pitch)),
            *("-g", str(self.word_gap), "-a", str(self.amplitude), "--stdout"),
        ]
        # A thread, not an asyncio subprocess: a reply cancelled by barge-in must not leave a
        # half-read pipe behind; the thread always reaps the child (bounded by the timeout).
        try:
            result = await asyncio.to_thread(
                subprocess.run, [*command, "--", text], capture_output=True, timeout=_TIMEOUT_S
            )
        except subprocess.TimeoutExpired:
            raise TextToSpeechError("espeak-ng timed out") from None
        if result.returncode != 0:
            raise TextToSpeechError(
                f"espeak-ng exited {result.returncode}: {result.stderr[:200]!r}"
            )
        out = result.stdout
        from threadline.channels.voice.audio_av import resample  # PyAV is loaded only when used

        pcm, rate = _read_wav(out)
        # libswresample is quick (~1 ms per second of audio): not worth a thread hop.
        return resample(pcm, rate, sample_rate)


def _read_wav(data: bytes) -> tuple[bytes, int]:
    """espeak-ng's --stdout WAV has a placeholder length; read what is actually there."""
    try:
        with wave.open(io.BytesIO(data)) as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise TextToSpeechError("espeak-ng wrote an unexpected WAV format")
            rate = wav.getframerate()
            pcm = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        raise TextToSpeechError(f"espeak-ng wrote an unreadable WAV: {exc}") from exc
    return pcm[: len(pcm) - len(pcm) % 2], rate
