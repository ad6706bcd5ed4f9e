"""The email leg's life cycle in `threadline serve`: the SMTP listener started and stopped
by the app's lifespan (like PSTN), and the agent's replies sent off the event loop."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import quote

from threadline.channels.email.service import EmailService, Outcome, Received
from threadline.channels.email.settings import EmailSettings, host_port

log = logging.getLogger(__name__)


class EmailChannel:
    def __init__(self, settings: EmailSettings, service: EmailService) -> None:
        self._settings = settings
        self.service = service
        self._server: asyncio.Server | None = None
        self._pending: set[asyncio.Task[Outcome | None]] = set()

    @property
    def port(self) -> int | None:
        if self._server is None or not self._server.sockets:
            return None
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    def continue_link(self, token: str) -> str | None:
        """A `mailto:` link to the support address with the handoff token prefilled; sending
        that mail joins the conversation (see EmailService)."""
        addresses = sorted(self._settings.addresses())
        to = addresses[0] if addresses else self._settings.email_from
        if to is None:
            return None
        subject = quote("Continue my conversation")
        return f"mailto:{to}?subject={subject}&body={quote(f'Continue my conversation {token}')}"

    async def start(self) -> None:
        if not self._settings.smtp_listen:
            return
        from threadline.channels.email.smtp_aiosmtpd import serve

        host, port = host_port(self._settings.smtp_listen)
        self._server = await serve(
            self.service,
            host,
            port,
            addresses=self._settings.addresses(),
            max_bytes=self._settings.email_max_bytes,
            on_received=self._reply,
        )
        log.info("email: SMTP listener on %s:%s", host, self.port)

    def _reply(self, received: Received) -> None:
        # After the 250: the sender must not wait for (or retry because of) our reply.
        task = asyncio.get_running_loop().create_task(
            asyncio.to_thread(self.service.reply, received)
        )
        self._pending.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Outcome | None]) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("email reply failed", exc_info=task.exception())

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
