"""The one module that wires Threadline's channels from settings: the ledger store, the API key
table, visitor token signing, live change feeds, projections, the chat agent and the handoff
service. Entry points (`threadline serve`, tests, benchmarks) call `bootstrap()` and hand the
result to `channels.http.app.create_app`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
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


def _wire_messaging(services: Services) -> None:
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
    services.messaging = MessagingService(
        services.ledger,
        PhoneDirectory(services.ledger),
        providers,
        turns=services.chat,
        handoffs=HandoffService(services.ledger),
    )


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
    _wire_messaging(services)
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
