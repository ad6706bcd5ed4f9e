"""Chooses the STT/TTS providers from settings. Vendor modules are imported here lazily, so
importing the voice package never loads an SDK that is not used."""

from __future__ import annotations

from collections.abc import Sequence

from threadline.channels.voice.errors import ProviderUnavailableError
from threadline.channels.voice.ports import SpeechToText, TextToSpeech
from threadline.channels.voice.settings import VoiceSettings


def _openai_key(settings: VoiceSettings) -> str:
    if settings.openai_api_key is None:
        raise ProviderUnavailableError("THREADLINE_OPENAI_API_KEY is not set")
    return settings.openai_api_key.get_secret_value()


def make_stt(settings: VoiceSettings) -> SpeechToText:
    if settings.stt_provider == "openai":
        from threadline.channels.voice.stt_openai import OpenAISTT

        return OpenAISTT(
            base_url=settings.openai_base_url,
            api_key=_openai_key(settings),
            model=settings.openai_stt_model,
        )
    from threadline.channels.voice.stt_whisper import WhisperSTT

    return WhisperSTT(
        settings.whisper_model,
        compute_type=settings.whisper_compute_type,
        cpu_threads=settings.whisper_cpu_threads,
        beam_size=settings.whisper_beam_size,
        low_logprob=settings.stt_low_logprob,
        high_no_speech=settings.stt_high_no_speech,
    )


def phone_stt(stt: SpeechToText, settings: VoiceSettings) -> SpeechToText:
    """The recogniser as phone (8 kHz source) legs use it: the same instance, decoding with
    `whisper_phone_beam_size`. Providers without a beam (cloud, test fakes) are used as is."""
    with_beam = getattr(stt, "with_beam", None)
    if with_beam is None:
        return stt
    view: SpeechToText = with_beam(settings.whisper_phone_beam_size)
    return view


def system_phrases() -> tuple[str, ...]:
    """The fixed sentences the system itself says on a voice leg (the openings, the repeat
    prompt): the only ones a TTS may keep synthesised — nothing from a conversation."""
    from threadline.channels.voice.pipeline import REPEAT_PROMPT
    from threadline.handoff.first_utterance import fixed_voice_phrases

    return (*fixed_voice_phrases(), REPEAT_PROMPT)


def make_tts(settings: VoiceSettings, phrases: Sequence[str] = ()) -> TextToSpeech:
    """`phrases`: fixed wording the TTS may cache (`system_phrases()`); nothing else is."""
    if settings.tts_provider == "openai":
        from threadline.channels.voice.tts_openai import OpenAITTS

        return OpenAITTS(
            base_url=settings.openai_base_url,
            api_key=_openai_key(settings),
            model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
        )
    if settings.tts_provider == "espeak":
        from threadline.channels.voice.tts_espeak import EspeakTTS

        return EspeakTTS(
            settings.espeak_voice,
            settings.espeak_words_per_minute,
            word_gap=settings.espeak_word_gap,
        )
    from threadline.channels.voice.tts_piper import PiperTTS

    return PiperTTS(
        settings.piper_voice,
        settings.piper_length_scale,
        settings.piper_phrase_cache,
        phrases=phrases,
    )


def unavailable(*providers: object) -> str | None:
    """One line saying why a provider cannot run here, or None when all can. Providers
    without a `check()` (cloud ones, test fakes) are taken as available."""
    problems: list[str] = []
    for provider in providers:
        check = getattr(provider, "check", None)
        if check is None:
            continue
        try:
            check()
        except ProviderUnavailableError as exc:
            problems.append(f"{getattr(provider, 'name', type(provider).__name__)}: {exc}")
    return "; ".join(problems) or None


def preload(*providers: object) -> None:
    """Starts loading local models in the background (the server calls this at start-up)."""
    for provider in providers:
        start = getattr(provider, "preload", None)
        if start is not None:
            start()
