"""What the HTTP surface and the channels run on: the ledger, the key store, visitor tokens,
the ports into projections, the agent and handoffs, live feeds and rate limits. Built by the
composition root (`threadline.app.bootstrap`), consumed by `threadline.channels.http`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from threadline.access.authfail import FailedAuthGate
from threadline.access.keys import KeyStore, KeyVerifier
from threadline.access.ratelimit import Limiter, RateLimiter
from threadline.access.tokens import VisitorTokens
from threadline.channels.console.settings import ConsoleSettings
from threadline.channels.live import ChangeFeed, LedgerFeed, LiveHub
from threadline.channels.messaging.service import MessagingService
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.ports import ChatTurns, Handoffs, ReadModels
from threadline.channels.pstn.channel import PstnChannel
from threadline.channels.settings import ChannelSettings
from threadline.channels.voice.settings import VoiceSettings
from threadline.ledger.store import Ledger

if TYPE_CHECKING:
    from threadline.agent.lm import FallbackLM
    from threadline.agent.voice import VoiceAgent
    from threadline.channels.email.channel import EmailChannel
    from threadline.channels.periodic import PeriodicJob
    from threadline.channels.voice.ports import SpeechToText, TextToSpeech
    from threadline.handoff.service import HandoffService


@dataclass
class Limiters:
    visitor: Limiter
    key: Limiter
    anonymous: Limiter
    # Failed authentications (bad keys, visitor or handoff tokens, continue-tokens).
    failed_auth: FailedAuthGate

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Limiters:
        return cls(
            visitor=RateLimiter(settings.visitor_rate_per_s, settings.visitor_burst),
            key=RateLimiter(settings.key_rate_per_s, settings.key_burst),
            anonymous=RateLimiter(settings.anonymous_rate_per_s, settings.anonymous_burst),
            failed_auth=FailedAuthGate(
                RateLimiter(settings.failed_auth_rate_per_s, settings.failed_auth_burst)
            ),
        )


@dataclass
class Services:
    settings: ChannelSettings
    ledger: Ledger
    keys: KeyStore
    tokens: VisitorTokens
    read_models: ReadModels | None = None
    chat: ChatTurns | None = None
    handoffs: Handoffs | None = None
    # The process's one handoff service (tokens, first utterance generator, expiry); every
    # channel that redeems or requests a handoff uses this instance.
    handoff_service: HandoffService | None = None
    # The one language model (THREADLINE_LLM_*) behind replies, first utterances, summaries.
    lm: FallbackLM | None = None
    voice_agent: VoiceAgent | None = None
    # STT/TTS shared by every voice leg (WebRTC and PSTN) when set; the voice routes build
    # their own from VoiceSettings otherwise.
    voice_providers: tuple[SpeechToText, TextToSpeech] | None = None
    # Sources of "conversation X changed" for live streams; extra ones (a cross-replica
    # PostgreSQL LISTEN/NOTIFY feed) are appended by whoever wires them.
    feeds: list[ChangeFeed] = field(default_factory=list)
    hub: LiveHub = field(default_factory=LiveHub)
    # Keys the console's login-failure digests: an unkeyed hash of a client address is
    # reversible by trying every address, a keyed one is not (same key on every replica).
    failure_secret: bytes | None = None
    limiters: Limiters | None = None
    key_verifier: KeyVerifier | None = None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    # SMS/WhatsApp webhooks (channels/messaging); mounted by the app factory when set.
    messaging: MessagingService | None = None
    # PSTN dial-out/inbound (channels/pstn); started and stopped by the app's lifespan.
    pstn: PstnChannel | None = None
    # Email over SMTP (channels/email); its listener is started and stopped by the lifespan.
    email: EmailChannel | None = None
    # Housekeeping (stale handoff expiry); started and stopped by the app's lifespan.
    jobs: list[PeriodicJob] = field(default_factory=list)
    # The sections of the root configuration the HTTP surface's channels read.
    voice_settings: VoiceSettings = field(default_factory=VoiceSettings)
    messaging_settings: MessagingSettings = field(default_factory=MessagingSettings)
    console_settings: ConsoleSettings = field(default_factory=ConsoleSettings)

    def __post_init__(self) -> None:
        if self.limiters is None:
            self.limiters = Limiters.from_settings(self.settings)
        if self.key_verifier is None:
            self.key_verifier = KeyVerifier(self.keys)
        if not self.feeds:
            self.feeds.append(LedgerFeed(self.ledger))

    def close(self) -> None:
        for closer in reversed(self.on_close):
            closer()
        self.keys.close()
        self.ledger.close()
