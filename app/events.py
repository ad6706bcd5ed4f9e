"""Every event type an outer package adds to the ledger, registered in one explicit call.

The ledger knows its own types; packages outside it (today messaging's delivery status)
declare theirs in a `register_events()` function that nothing calls on import. Entry points
(`bootstrap()`, the CLI, a worker) call `register_event_types()` once at start-up, so which
types a process knows does not depend on which modules it happened to import.
"""

from __future__ import annotations

from threadline.agent import events as agent_events
from threadline.channels.email import events as email_events
from threadline.channels.messaging import events as messaging_events
from threadline.channels.voice import bridge_events


def register_event_types() -> None:
    """Registers every outer package's event types and privacy policies; idempotent."""
    agent_events.register_events()
    messaging_events.register_events()
    email_events.register_events()
    bridge_events.register_events()
