"""The one configuration tree: a root `Settings` with one section per package, read from the
environment once, here, at the composition root, and passed down.

Each section is a plain pydantic model in its package's `settings.py` (it never reads the
environment itself) with an `ENV_PREFIX`; a field `f` of a section is set by the variable
`ENV_PREFIX + F` (`THREADLINE_DATABASE_URL`, `THREADLINE_PSTN_TRUNK`,
`THREADLINE_CONSOLE_COOKIE_SECURE`…). Values are parsed as pydantic-settings parses them
(numbers, booleans, JSON for lists, comma-separated where a field says so). One variable may
set the same field in several sections (`THREADLINE_DATABASE_URL` is the ledger's, the API
key table's and the relay's database).

What is refused at start-up, with a one-line `ConfigurationError`:
- a `THREADLINE_*` variable that sets nothing (a typo would otherwise run on the defaults:
  `THREADLINE_DATABSE_URL=postgresql://…` silently on SQLite), naming the closest valid one;
- a value its field does not accept;
- an agent pack name (THREADLINE_AGENT_PACKS, THREADLINE_AGENT_TENANT_PACKS) with no
  agent/packs/*.json file;
- in production (`THREADLINE_ENV=production`): a missing or short token-signing secret, and
  any secret that is a placeholder (`changeme`, `secret`, `xxxx…`).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import EnvSettingsSource

from threadline.agent.settings import LanguageModelSettings
from threadline.channels.console.settings import ConsoleSettings
from threadline.channels.email.settings import EmailSettings
from threadline.channels.messaging.settings import MessagingSettings
from threadline.channels.pstn.settings import PstnSettings
from threadline.channels.settings import ChannelSettings
from threadline.channels.voice.settings import VoiceSettings
from threadline.handoff.errors import ConfigurationError
from threadline.handoff.settings import HandoffSettings
from threadline.ledger.backends import Backend, Kind
from threadline.ledger.errors import StoreUnavailableError
from threadline.ledger.settings import LedgerSettings
from threadline.projections.settings import ProjectionSettings
from threadline.streaming.settings import StreamSettings

ROOT_PREFIX = "THREADLINE_"
# THREADLINE_SECRET and THREADLINE_MASTER_KEY: 256 bits of randomness as text.
MIN_PRODUCTION_SECRET = 32
_PLACEHOLDER_WORDS = ("changeme", "change-me", "change_me", "placeholder", "example", "secret")
_PLACEHOLDER_VALUES = {"password", "test", "todo", "default", "none", "null", "xxx"}


class Settings(BaseModel):
    """The effective configuration of one process."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # development: generated keys and random per-process secrets are allowed (with a
    # warning); production: secrets must be set and real.
    env: Literal["development", "production"] = "development"
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    projections: ProjectionSettings = Field(default_factory=ProjectionSettings)
    handoff: HandoffSettings = Field(default_factory=HandoffSettings)
    llm: LanguageModelSettings = Field(default_factory=LanguageModelSettings)
    channels: ChannelSettings = Field(default_factory=ChannelSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    messaging: MessagingSettings = Field(default_factory=MessagingSettings)
    pstn: PstnSettings = Field(default_factory=PstnSettings)
    console: ConsoleSettings = Field(default_factory=ConsoleSettings)
    stream: StreamSettings = Field(default_factory=StreamSettings)
    email: EmailSettings = Field(default_factory=EmailSettings)


SECTIONS: dict[str, type[BaseModel]] = {
    name: field.annotation  # type: ignore[misc]
    for name, field in Settings.model_fields.items()
    if name != "env"
}


def variables() -> Iterator[tuple[str, str, str]]:
    """(variable, section, field) for every setting, in tree order."""
    yield f"{ROOT_PREFIX}ENV", "", "env"
    for section, model in SECTIONS.items():
        prefix: str = getattr(model, "ENV_PREFIX", ROOT_PREFIX)
        tuning: frozenset[str] = getattr(model, "TUNING", frozenset())
        for field in model.model_fields:
            if field in tuning:
                continue
            yield f"{prefix}{field}".upper(), section, field


class _SectionSource(EnvSettingsSource):
    """pydantic-settings' own environment parsing, over a given mapping and one section."""

    def __init__(self, model: type[BaseModel], environ: Mapping[str, str]) -> None:
        self._environ = {k.lower(): v for k, v in environ.items()}
        settings_cls: Any = model  # the source only reads model_fields and model_config
        super().__init__(
            settings_cls,
            case_sensitive=False,
            env_prefix=getattr(model, "ENV_PREFIX", ROOT_PREFIX),
            env_parse_none_str=None,
        )

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return self._environ


# Settings that moved: the language model is chosen in one place (THREADLINE_LLM_*) now.
_RENAMED = {
    "THREADLINE_AGENT": "THREADLINE_LLM_PROVIDER",
    "THREADLINE_FIRST_UTTERANCE": "THREADLINE_LLM_PROVIDER",
    "THREADLINE_OPENAI_MODEL": "THREADLINE_LLM_MODEL",
    "THREADLINE_OPENAI_TIMEOUT_S": "THREADLINE_LLM_TIMEOUT_S",
    # The data-subject routes need a key with that scope now (docs/privacy.md).
    "THREADLINE_DATA_SUBJECT_KEYS": "API key scopes: threadline keys create --scope data-subjects",
}


def _check_names(environ: Mapping[str, str]) -> None:
    known = {name for name, _, _ in variables()}
    for name in sorted(environ):
        upper = name.upper()
        if not upper.startswith(ROOT_PREFIX) or upper in known:
            continue
        if upper in _RENAMED:
            raise ConfigurationError(f"{name} was replaced by {_RENAMED[upper]}")
        close = difflib.get_close_matches(upper, sorted(known), n=1, cutoff=0.6)
        hint = f": did you mean {close[0]}?" if close else " (see docs/configuration.md)"
        raise ConfigurationError(f"unknown setting {name}{hint}")


def _variable_of(section: str, field: str) -> str:
    model = SECTIONS[section]
    return f"{getattr(model, 'ENV_PREFIX', ROOT_PREFIX)}{field}".upper()


def _one_line(section: str, exc: ValidationError) -> str:
    first = exc.errors()[0]
    field = str(first["loc"][0]) if first["loc"] else ""
    name = _variable_of(section, field) if field else section
    return f"invalid setting {name}: {first['msg']}"


def _is_placeholder(value: str) -> bool:
    lowered = value.strip().lower()
    return (
        lowered in _PLACEHOLDER_VALUES
        or any(word in lowered for word in _PLACEHOLDER_WORDS)
        or len(set(lowered)) <= 2
    )


def _secrets(settings: Settings) -> Iterator[tuple[str, str]]:
    for section in SECTIONS:
        model = getattr(settings, section)
        for field in type(model).model_fields:
            value = getattr(model, field)
            if isinstance(value, SecretStr):
                yield _variable_of(section, field), value.get_secret_value()


def _is_postgres(url: str) -> bool:
    try:
        return Backend.parse(url).kind is Kind.POSTGRES
    except StoreUnavailableError:
        return False  # the ledger itself refuses it, naming the accepted forms


def _check_production(settings: Settings) -> None:
    if settings.env != "production":
        return
    if settings.handoff.secret is None:
        raise ConfigurationError("THREADLINE_SECRET must be set in production")
    ledger = settings.ledger
    if _is_postgres(ledger.database_url) and (
        ledger.checkpoint_key_file is None or ledger.checkpoint_file is None
    ):
        # Signed checkpoints are what detect a cut or rewritten tail (docs/integrity.md);
        # SQLite keeps them beside the database file by default, PostgreSQL has no "beside".
        raise ConfigurationError(
            "THREADLINE_CHECKPOINT_KEY_FILE and THREADLINE_CHECKPOINT_FILE must be set in "
            "production (signed checkpoints, kept outside the database)"
        )
    for name, value in _secrets(settings):
        if _is_placeholder(value):
            raise ConfigurationError(f"{name} is a placeholder value; set a real secret")
    for name, secret in (
        ("THREADLINE_SECRET", settings.handoff.secret),
        ("THREADLINE_MASTER_KEY", settings.ledger.master_key),
    ):
        if secret is not None and len(secret.get_secret_value()) < MIN_PRODUCTION_SECRET:
            raise ConfigurationError(
                f"{name} must be at least {MIN_PRODUCTION_SECRET} characters in production"
            )


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """The configuration from `environ` (default: this process's environment)."""
    environ = dict(os.environ if environ is None else environ)
    _check_names(environ)
    values: dict[str, Any] = {}
    env_value = {k.upper(): v for k, v in environ.items()}.get(f"{ROOT_PREFIX}ENV")
    if env_value is not None:
        values["env"] = env_value.strip().lower()
    for section, model in SECTIONS.items():
        try:
            read = _SectionSource(model, environ)()
            for field in getattr(model, "TUNING", frozenset()):
                read.pop(field, None)
            values[section] = model.model_validate(read)
        except ValidationError as exc:
            raise ConfigurationError(_one_line(section, exc)) from None
        except ValueError as exc:  # a list/JSON value that does not parse
            raise ConfigurationError(f"invalid setting in {section}: {exc}") from None
    try:
        settings = Settings(**values)
    except ValidationError as exc:
        message = exc.errors()[0]["msg"]
        raise ConfigurationError(f"invalid setting {ROOT_PREFIX}ENV: {message}") from None
    _check_packs(settings.handoff)
    _check_production(settings)
    return settings


def _check_packs(handoff: HandoffSettings) -> None:
    """Every pack named by THREADLINE_AGENT_PACKS / THREADLINE_AGENT_TENANT_PACKS ships
    (agent/packs/*.json): a typo must not leave a tenant on the general pack alone."""
    from threadline.agent.packs import available

    have = available()
    named = [("THREADLINE_AGENT_PACKS", n) for n in handoff.pack_names()]
    for tenant, names in handoff.packs_by_tenant().items():
        named += [(f"THREADLINE_AGENT_TENANT_PACKS (tenant {tenant!r})", n) for n in names]
    for variable, name in named:
        if name not in have:
            raise ConfigurationError(
                f"invalid setting {variable}: no agent pack named {name!r} "
                f"(have: {', '.join(have)})"
            )


def current() -> Settings:
    """This process's configuration, parsed once and shared by every part of a command; it
    is parsed again only when a THREADLINE_* variable changed (tests set them per case)."""
    ours = tuple(sorted((k, v) for k, v in os.environ.items() if k.upper().startswith(ROOT_PREFIX)))
    return _parsed(ours)


@lru_cache(maxsize=8)
def _parsed(ours: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings(dict(ours))


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration as `{variable: value}`, secrets shown as `********`
    (or `(unset)`), for `threadline config show`."""
    shown: dict[str, Any] = {}
    for name, section, field in variables():
        value: Any = getattr(getattr(settings, section), field) if section else settings.env
        if isinstance(value, SecretStr):
            value = "********" if value.get_secret_value() else "(unset)"
        elif isinstance(value, tuple):
            value = list(value)
        elif value is not None and not isinstance(value, str | int | float | bool):
            value = str(value)
        shown[name] = value
    return shown


__all__ = ["SECTIONS", "Settings", "current", "load_settings", "masked"]
