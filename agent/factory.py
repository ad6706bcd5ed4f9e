"""Builds the agent on the process's one language model (`THREADLINE_LLM_*`, see
`threadline.agent.lm.build_lm`): offline unless a provider is configured, and then with the
offline model as the recorded fallback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from threadline.agent.core import Agent
from threadline.agent.lm import FallbackLM, build_lm
from threadline.agent.tools import ToolBackend
from threadline.handoff.settings import HandoffSettings


def build_agent(
    tools: ToolBackend,
    settings: HandoffSettings | None = None,
    clock: Callable[[], datetime] | None = None,
    lm: FallbackLM | None = None,
) -> Agent:
    settings = settings or HandoffSettings()
    lm = lm or build_lm(
        clock=clock, packs=settings.pack_names(), tenant_packs=settings.packs_by_tenant()
    )
    if lm.primary is lm.offline:
        return Agent(lm.offline, tools, settings=settings, clock=clock)
    return Agent(lm.primary, tools, fallback=lm.offline, settings=settings, clock=clock)
