"""One error hierarchy for the voice leg; the API edge maps these to HTTP statuses."""

from __future__ import annotations

from threadline.ledger.errors import ThreadlineError


class VoiceError(ThreadlineError):
    """Root of every error the voice package raises on purpose."""


class ProviderUnavailableError(VoiceError):
    """A speech provider cannot run here (missing binary, SDK or model)."""


class SpeechToTextError(VoiceError):
    """A provider could not decode an utterance."""


class TextToSpeechError(VoiceError):
    """A provider could not synthesise a reply."""


class InvalidOfferError(VoiceError):
    """The browser's session description cannot be used (not an SDP offer, no audio)."""


class LegNotFoundError(VoiceError):
    """No live voice leg has that id."""


class CallNotBridgeableError(VoiceError):
    """An operator cannot join: no live visitor audio yet, or a person is already on it."""
