"""The one module that wires Threadline's channels from the root `Settings`: the ledger store,
the API key table, visitor token signing, live change feeds, projections, the chat agent,
the handoff service, SMS/WhatsApp and, when a SIP trunk is configured, PSTN calls. Entry
points (`threadline serve`, tests, benchmarks) call `bootstrap(settings)` and hand the result
to `threadline.channels.http.app.create_app`. Each part gets its own section of the one
configuration; nothing below reads the environment.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

from threadline.access.keys import open_key_store
from threadline.access.tokens import VisitorTokens
from threadline.app.events import register_event_types
from threadline.app.settings import Settings, current
from threadline.channels.messaging.service import MessagingService
from threadline.channels.periodic import PeriodicJob
from threadline.channels.pstn.channel import PstnChannel
from threadline.channels.services import Services
from threadline.handoff.signing import resolve_secret
from threadline.ledger.aead import derive
from threadline.ledger.backends import Backend, Kind

if TYPE_CHECKING:
    from threadline.agent.lm import FallbackLM
    from threadline.channels.messaging.directory import PhoneDirectory
    from threadline.channels.voice.ports import SpeechToText, TextToSpeech
    from threadline.handoff.human import HumanDesk
    from threadline.handoff.service import HandoffService

log = logging.getLogger(__name__)


def _wire_messaging(services: Services) -> PhoneDirectory:
    """SMS/WhatsApp providers from `THREADLINE_*` settings (a provider whose secrets are not
    set refuses its webhooks with 503). Inbound texts go through the chat agent when wired."""
    from threadline.channels.messaging.directory import PhoneDirectory
    from threadline.channels.messaging.provider import MessagingProvider
    from threadline.channels.messaging.twilio import TwilioProvider
    from threadline.channels.messaging.whatsapp_cloud import WhatsAppCloudProvider

    settings = services.messaging_settings
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
        handoffs=handoff_service(services),
        failed_auth=services.limiters.failed_auth if services.limiters else None,
    )
    return directory


def _wire_pstn(services: Services, directory: PhoneDirectory, config: Settings) -> None:
    """PSTN dial-out and inbound calls when `THREADLINE_PSTN_TRUNK` is set. Calls run the
    voice pipeline the WebRTC legs run: the same STT/TTS instances (the STT decoding with the
    phone beam, `phone_stt`), the same agent (with
    channel=pstn), the vocabulary from the replayed context. SIP/RTP libraries are imported
    only when the app's lifespan starts the channel."""
    settings = config.pstn
    if not settings.trunk:
        return
    from threadline.channels.voice.phone import PhoneLegs
    from threadline.channels.voice.providers import phone_stt

    stt, tts = voice_providers(services)
    stt = phone_stt(stt, services.voice_settings)
    voice_agent = services.voice_agent
    agent = partial(voice_agent.handler, channel="pstn") if voice_agent is not None else None
    legs = PhoneLegs(services.ledger, stt=stt, tts=tts, agent=agent)
    services.pstn = PstnChannel(settings, handoff_service(services), directory, voice=legs)


def _wire_email(services: Services, config: Settings) -> None:
    """Email when `THREADLINE_SMTP_LISTEN` is set: inbound mail runs the chat agent, replies
    go out through `THREADLINE_SMTP_RELAY`. aiosmtpd is imported when the lifespan starts."""
    settings = config.email
    if not settings.smtp_listen:
        return
    from threadline.channels.email.channel import EmailChannel
    from threadline.channels.email.directory import EmailDirectory
    from threadline.channels.email.relay import SmtpRelay
    from threadline.channels.email.service import EmailService

    service = EmailService(
        services.ledger,
        EmailDirectory(services.ledger),
        from_address=settings.email_from,
        relay=SmtpRelay(settings) if settings.smtp_relay else None,
        tenant=settings.email_tenant,
        turns=services.chat,
        handoffs=handoff_service(services),
    )
    services.email = EmailChannel(settings, service)


def voice_providers(services: Services) -> tuple[SpeechToText, TextToSpeech]:
    """The server's STT and TTS (from `THREADLINE_STT_PROVIDER`/`TTS_PROVIDER`), built once."""
    if services.voice_providers is None:
        from threadline.channels.voice.providers import make_stt, make_tts, system_phrases

        settings = services.voice_settings
        services.voice_providers = (make_stt(settings), make_tts(settings, system_phrases()))
    return services.voice_providers


def language_model(services: Services, config: Settings | None = None) -> FallbackLM:
    """The process's one language model (`THREADLINE_LLM_*`), built once: chat and voice
    replies, every channel's first utterance and the operator summary all use it."""
    if services.lm is None:
        from threadline.agent.lm import build_lm

        tree = config or current()
        handoff = tree.handoff
        services.lm = build_lm(
            tree.llm, packs=handoff.pack_names(), tenant_packs=handoff.packs_by_tenant()
        )
    return services.lm


def handoff_service(services: Services, config: Settings | None = None) -> HandoffService:
    """The process's one handoff service; its first utterances come from the language
    model (offline unless `THREADLINE_LLM_PROVIDER` names a provider)."""
    if services.handoff_service is None:
        from threadline.handoff.service import HandoffService

        settings = (config or current()).handoff
        services.handoff_service = HandoffService(
            services.ledger, settings=settings, utterances=language_model(services, config)
        )
    return services.handoff_service


def visitor_tokens(config: Settings) -> VisitorTokens:
    return VisitorTokens(resolve_secret(config.handoff), config.channels.visitor_token_ttl_s)


def bootstrap(config: Settings | None = None) -> Services:
    """Everything the server runs on, from `config` (default: this process's environment,
    read once)."""
    register_event_types()
    config = config or current()
    settings = config.channels
    from threadline.ledger.store import open_ledger

    ledger = open_ledger(settings.database_url, settings=config.ledger)
    try:
        keys = open_key_store(settings.database_url)
    except BaseException:
        ledger.close()
        raise
    services = Services(
        settings=settings,
        ledger=ledger,
        keys=keys,
        tokens=visitor_tokens(config),
        voice_settings=config.voice,
        messaging_settings=config.messaging,
        console_settings=config.console,
        failure_secret=derive(resolve_secret(config.handoff), "threadline/login-failures"),
    )
    handoff_service(services, config)
    _wire_rate_limits(services, config)
    _wire_other_processes(services)
    _wire_optional(services, config)
    directory = _wire_messaging(services)
    _wire_pstn(services, directory, config)
    _wire_email(services, config)
    _wire_checkpoints(services, config)
    return services


def _wire_checkpoints(services: Services, config: Settings) -> None:
    """The server signs checkpoints itself every `THREADLINE_CHECKPOINT_INTERVAL_S` where the
    key and log files are known (an SQLite file database, or both set); otherwise it is left
    to `threadline audit checkpoint` (docs/integrity.md)."""
    from threadline.ledger.checkpoint import CheckpointError, configured_paths
    from threadline.ledger.checkpoint_schedule import CheckpointSchedule, Lead, SoleWriter

    settings = config.ledger
    if settings.checkpoint_interval_s <= 0:
        return
    try:
        paths = configured_paths(settings.database_url, settings)
    except CheckpointError:
        log.info("signed checkpoints: no key/log file configured, the server writes none")
        return
    backend = Backend.parse(settings.database_url)
    lead: Lead = SoleWriter()
    if backend.kind is Kind.POSTGRES:
        from threadline.ledger.checkpoint_lead_postgres import PostgresLead

        lead = PostgresLead(backend.dsn)
    services.on_close.append(lead.close)
    schedule = CheckpointSchedule(services.ledger, paths, lead)
    services.jobs.append(
        PeriodicJob("signed checkpoint", schedule.run, settings.checkpoint_interval_s)
    )


def _wire_rate_limits(services: Services, config: Settings) -> None:
    """Token buckets in the database, so every replica draws on one budget (issue 18); the
    rows name principals by an HMAC keyed with a subkey of THREADLINE_SECRET (the same on
    every replica, so one principal is one row)."""
    settings = services.settings
    url = settings.database_url
    on_postgres = Backend.parse(url).kind is Kind.POSTGRES
    if settings.rate_limits == "process" or (settings.rate_limits == "auto" and not on_postgres):
        return
    from threadline.access.authfail import FailedAuthGate
    from threadline.access.ratelimit_sql import PURPOSE, open_sql_limiter
    from threadline.channels.services import Limiters

    secret = derive(resolve_secret(config.handoff), PURPOSE)
    made = []
    for bucket, rate, burst in (
        ("visitor", settings.visitor_rate_per_s, settings.visitor_burst),
        ("key", settings.key_rate_per_s, settings.key_burst),
        ("anonymous", settings.anonymous_rate_per_s, settings.anonymous_burst),
        ("failed_auth", settings.failed_auth_rate_per_s, settings.failed_auth_burst),
    ):
        made.append(open_sql_limiter(url, bucket, rate, burst, secret=secret))
        services.on_close.append(made[-1].close)
    services.limiters = Limiters(
        visitor=made[0], key=made[1], anonymous=made[2], failed_auth=FailedAuthGate(made[3])
    )


def _wire_other_processes(services: Services) -> None:
    """Live streams also see appends made by other processes (replicas, CLI, workers)."""
    from threadline.channels.live_log import GlobalLogFeed

    url = services.settings.database_url
    listen = None
    if Backend.parse(url).kind is Kind.POSTGRES:
        from threadline.channels.live_postgres import listener

        listen = listener(url)
    services.feeds.append(GlobalLogFeed(services.ledger, listener=listen))


def _wire_optional(services: Services, config: Settings) -> None:
    """Projections, the chat agent and the handoff service, adapted to the API's ports."""
    from threadline.channels.adapters import HandoffAdapter, LedgerReadModels, ThrottledWakeLog
    from threadline.projections.service import MetricsService, open_metrics_view, view_url
    from threadline.projections.snapshots import ContextSnapshots
    from threadline.projections.text import clear_on_erasure

    # Caught up on a daemon thread, woken by this process's appends (thinned) and polling
    # for appends made by other processes.
    view = open_metrics_view(view_url(config.projections, config.ledger.database_url))
    metrics = MetricsService(ThrottledWakeLog(services.ledger), view, config.projections)
    metrics.start()
    services.on_close.append(metrics.close)
    # The text-analysis cache holds visitors' words: an erasure here empties it at once.
    services.on_close.append(clear_on_erasure(services.ledger))
    snapshots = ContextSnapshots(
        services.ledger,
        interval=config.projections.projections_snapshot_interval,
        max_snapshots=config.projections.projections_context_snapshots,
    )
    services.read_models = LedgerReadModels(services.ledger, metrics, snapshots)
    handoffs = handoff_service(services)
    services.handoffs = HandoffAdapter(handoffs)
    interval = services.settings.handoff_expiry_interval_s
    if interval > 0:
        services.jobs.append(PeriodicJob("handoff expiry", handoffs.expire_stale, interval))

    # The chat agent (offline deterministic unless THREADLINE_LLM_PROVIDER=openai) with its tools
    # on real tables in the same database (`threadline seed` fills the demo data).
    from threadline.agent.chat import ChatAgent
    from threadline.agent.factory import build_agent
    from threadline.agent.sqltools import open_tool_backend

    tools = open_tool_backend(services.settings.database_url)
    services.on_close.append(tools.close)
    agent = build_agent(tools, config.handoff, lm=language_model(services, config))
    desk = _human_desk(services)
    services.chat = ChatAgent(services.ledger, agent, desk)
    # The voice leg's turns run the same agent (persona, model, tools) as the chat.
    from threadline.agent.voice import VoiceAgent

    services.voice_agent = VoiceAgent(services.ledger, agent, desk)


def _human_desk(services: Services) -> HumanDesk:
    """A person can take over (issue 16): presence from the console's operator store."""
    from threadline.channels.console.operators_sql import open_operator_store
    from threadline.channels.console.presence import OperatorPresence
    from threadline.handoff.human import DeskSettings, HumanDesk
    from threadline.projections.human import QueueIndex

    console = services.console_settings
    store = open_operator_store(console.operators_url or services.settings.database_url)
    services.on_close.append(store.close)
    return HumanDesk(
        QueueIndex(services.ledger),
        OperatorPresence(store, console.presence_ttl_seconds),
        DeskSettings(console.expected_handle_seconds, console.human_signal_threshold),
        summarize=language_model(services).summarize,
    )
