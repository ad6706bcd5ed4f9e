"""Builds the agent chosen by settings (`THREADLINE_AGENT=offline|openai`)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from threadline.agent.core import Agent
from threadline.agent.offline import OfflineModel
from threadline.agent.tools import ToolBackend
from threadline.handoff.settings import HandoffSettings


def build_agent(
    tools: ToolBackend,
    settings: HandoffSettings | None = None,
    clock: Callable[[], datetime] | None = None,
) -> Agent:
    settings = settings or HandoffSettings()
    if settings.agent == "openai":
        from threadline.agent.openai_model import OpenAIModel

        return Agent(
            OpenAIModel(settings=settings),
            tools,
            fallback=OfflineModel(settings.agent_packs.split(",")),
            settings=settings,
            clock=clock,
        )
    return Agent(
        OfflineModel(settings.agent_packs.split(",")), tools, settings=settings, clock=clock
    )
