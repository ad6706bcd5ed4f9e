"""Chooses the STT/TTS providers from settings. Vendor modules are imported here lazily, so
importing the voice package never loads an SDK that is not used."""

from __future__ import annotations

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
    from threadline.channels.voice.stt_pocketsphinx import PocketsphinxSTT

    return PocketsphinxSTT()


def make_tts(settings: VoiceSettings) -> TextToSpeech:
    if settings.tts_provider == "openai":
        from threadline.channels.voice.tts_openai import OpenAITTS

        return OpenAITTS(
            base_url=settings.openai_base_url,
            api_key=_openai_key(settings),
            model=settings.openai_tts_model,
            voice=settings.openai_tts_voice,
        )
    from threadline.channels.voice.tts_espeak import EspeakTTS

    return EspeakTTS(settings.espeak_voice, settings.espeak_words_per_minute)
