"""The one module that wires Threadline's channels from settings: the ledger store, the API key
table, visitor token signing, live change feeds, projections, the chat agent, the handoff
service, SMS/WhatsApp and, when a SIP trunk is configured, PSTN calls. Entry points
(`threadline serve`, tests, benchmarks) call `bootstrap()` and hand the result to
`channels.http.app.create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING

from channels.keys import KeyStore, KeyVerifier, open_key_store
from channels.live import ChangeFeed, LedgerFeed, LiveHub
from channels.messaging.service import MessagingService
from channels.periodic import PeriodicJob
from channels.ports import ChatTurns, Handoffs, ReadModels
from channels.pstn.channel import PstnChannel
from channels.ratelimit import RateLimiter
from channels.settings import ChannelSettings
from channels.tokens import VisitorTokens
from handoff.signing import resolve_secret
from ledger.store import Ledger

if TYPE_CHECKING:
    from channels.messaging.directory import PhoneDirectory
    from channels.voice.ports import SpeechToText, TextToSpeech
    from handoff.agent.voice import VoiceAgent

log = logging.getLogger(__name__)


@dataclass
class Limiters:
    visitor: RateLimiter
    key: RateLimiter
    anonymous: RateLimiter

    @classmethod
    def from_settings(cls, settings: ChannelSettings) -> Limiters:
        return cls(
            visitor=RateLimiter(settings.visitor_rate_per_s, settings.visitor_burst),
            key=RateLimiter(settings.key_rate_per_s, settings.key_burst),
            anonymous=RateLimiter(settings.anonymous_rate_per_s, settings.anonymous_burst),
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
    voice_agent: VoiceAgent | None = None
    # STT/TTS shared by every voice leg (WebRTC and PSTN) when set; the voice routes build
    # their own from VoiceSettings otherwise.
    voice_providers: tuple[SpeechToText, TextToSpeech] | None = None
    # Sources of "conversation X changed" for live streams; extra ones (a cross-replica
    # PostgreSQL LISTEN/NOTIFY feed) are appended by whoever wires them.
    feeds: list[ChangeFeed] = field(default_factory=list)
    hub: LiveHub = field(default_factory=LiveHub)
    limiters: Limiters | None = None
    key_verifier: KeyVerifier | None = None
    on_close: list[Callable[[], None]] = field(default_factory=list)
    # SMS/WhatsApp webhooks (channels/messaging); mounted by the app factory when set.
    messaging: MessagingService | None = None
    # PSTN dial-out/inbound (channels/pstn); started and stopped by the app's lifespan.
    pstn: PstnChannel | None = None
    # Housekeeping (stale handoff expiry); started and stopped by the app's lifespan.
    jobs: list[PeriodicJob] = field(default_factory=list)

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


def _wire_messaging(services: Services) -> PhoneDirectory:
    """SMS/WhatsApp providers from `THREADLINE_*` settings (a provider whose secrets are not
    set refuses its webhooks with 503). Inbound texts go through the chat agent when wired."""
    from channels.messaging.directory import PhoneDirectory
    from channels.messaging.events import register_events
    from channels.messaging.provider import MessagingProvider
    from channels.messaging.settings import MessagingSettings
    from channels.messaging.twilio import TwilioProvider
    from channels.messaging.whatsapp_cloud import WhatsAppCloudProvider
    from handoff.service import HandoffService

    register_events()
    settings = MessagingSettings()
    providers: dict[str, MessagingProvider] = {
        "twilio": TwilioProvider(settings),
        "whatsapp_cloud": WhatsAppCloudProvider(settings),
    }
    # The ledger object is the real store (it has read_all); the port names only a part.
    directory = PhoneDirectory(services.ledger)
    services.messaging = MessagingService(
        services.ledger,
        directory,
        providers,
        turns=services.chat,
        handoffs=HandoffService(services.ledger),
    )
    return directory


def _wire_pstn(services: Services, directory: PhoneDirectory) -> None:
    """PSTN dial-out and inbound calls when `THREADLINE_PSTN_TRUNK` is set. Calls run the
    voice pipeline the WebRTC legs run: the same STT/TTS instances, the same agent (with
    channel=pstn), the vocabulary from the replayed context. SIP/RTP libraries are imported
    only when the app's lifespan starts the channel."""
    from channels.pstn.settings import PstnSettings

    settings = PstnSettings()
    if not settings.trunk:
        return
    from channels.voice.phone import PhoneLegs
    from handoff.service import HandoffService

    stt, tts = voice_providers(services)
    voice_agent = services.voice_agent
    agent = partial(voice_agent.handler, channel="pstn") if voice_agent is not None else None
    legs = PhoneLegs(services.ledger, stt=stt, tts=tts, agent=agent)
    services.pstn = PstnChannel(settings, HandoffService(services.ledger), directory, voice=legs)


def voice_providers(services: Services) -> tuple[SpeechToText, TextToSpeech]:
    """The server's STT and TTS (from `THREADLINE_STT_PROVIDER`/`TTS_PROVIDER`), built once."""
    if services.voice_providers is None:
        from channels.voice.providers import make_stt, make_tts
        from channels.voice.settings import VoiceSettings

        settings = VoiceSettings()
        services.voice_providers = (make_stt(settings), make_tts(settings))
    return services.voice_providers


def visitor_tokens(settings: ChannelSettings) -> VisitorTokens:
    return VisitorTokens(resolve_secret(), settings.visitor_token_ttl_s)


def bootstrap(settings: ChannelSettings | None = None) -> Services:
    settings = settings or ChannelSettings()
    from ledger.store import open_ledger

    ledger = open_ledger(settings.database_url)
    try:
        keys = open_key_store(settings.database_url)
    except BaseException:
        ledger.close()
        raise
    services = Services(
        settings=settings, ledger=ledger, keys=keys, tokens=visitor_tokens(settings)
    )
    _wire_other_processes(services)
    _wire_optional(services)
    directory = _wire_messaging(services)
    _wire_pstn(services, directory)
    return services


def _wire_other_processes(services: Services) -> None:
    """Live streams also see appends made by other processes (replicas, CLI, workers)."""
    from channels.live_log import GlobalLogFeed

    url = services.settings.database_url
    listen = None
    if url.startswith(("postgresql://", "postgres://")):
        from channels.live_postgres import listener

        listen = listener(url)
    services.feeds.append(GlobalLogFeed(services.ledger, listener=listen))


def _wire_optional(services: Services) -> None:
    """Projections, the chat agent and the handoff service, adapted to the API's ports."""
    from channels.adapters import HandoffAdapter, LedgerReadModels, ThrottledWakeLog
    from handoff.service import HandoffService
    from projections.service import MetricsService, open_metrics_view

    # Caught up on a daemon thread, woken by this process's appends (thinned) and polling
    # for appends made by other processes.
    metrics = MetricsService(ThrottledWakeLog(services.ledger), open_metrics_view())
    metrics.start()
    services.on_close.append(metrics.close)
    services.read_models = LedgerReadModels(services.ledger, metrics)
    handoffs = HandoffService(services.ledger)
    services.handoffs = HandoffAdapter(handoffs)
    interval = services.settings.handoff_expiry_interval_s
    if interval > 0:
        services.jobs.append(PeriodicJob("handoff expiry", handoffs.expire_stale, interval))

    # The chat agent (offline deterministic unless THREADLINE_AGENT=openai) with its tools
    # on real tables in the same database (`threadline seed` fills the demo data).
    from channels.tools import open_tool_backend
    from handoff.agent.chat import ChatAgent
    from handoff.agent.factory import build_agent

    tools = open_tool_backend(services.settings.database_url)
    services.on_close.append(tools.close)
    agent = build_agent(tools)
    services.chat = ChatAgent(services.ledger, agent)
    # The voice leg's turns run the same agent (persona, model, tools) as the chat.
    from handoff.agent.voice import VoiceAgent

    services.voice_agent = VoiceAgent(services.ledger, agent)
