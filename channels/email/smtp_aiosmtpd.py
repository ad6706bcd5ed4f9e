"""The inbound SMTP listener (aiosmtpd), on the app's event loop. Leaf adapter: the only
module that imports aiosmtpd, imported when the channel starts.

Replies: 550 for a recipient that is not a support address, 552 when the message exceeds
the size limit (announced in EHLO as SIZE, checked again on DATA), 550 5.6.0 for a
malformed message, 451 when the ledger is unavailable (the sender retries). Only a 250
means something was recorded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Collection

from aiosmtpd.smtp import SMTP, Envelope, Session

from threadline.channels.email.errors import MalformedMailError
from threadline.channels.email.service import EmailService, Received

log = logging.getLogger(__name__)


class _Handler:
    def __init__(
        self,
        service: EmailService,
        addresses: Collection[str],
        max_bytes: int,
        on_received: Callable[[Received], None],
    ) -> None:
        self._service = service
        self._addresses = addresses
        self._max_bytes = max_bytes
        self._on_received = on_received

    async def handle_RCPT(  # noqa: N802 -- aiosmtpd's hook name
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        if address.lower() not in self._addresses:
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(  # noqa: N802 -- aiosmtpd's hook name
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        raw = envelope.original_content or b""
        if len(raw) > self._max_bytes:
            return "552 5.3.4 message too big"
        try:
            received = await asyncio.to_thread(self._service.receive, raw)
        except MalformedMailError as exc:
            return f"550 5.6.0 malformed message: {exc}"
        except Exception:
            log.exception("inbound mail not recorded")
            return "451 4.3.0 temporary failure, try again later"
        if received.reply is not None:
            self._on_received(received)
        return "250 2.0.0 OK"


async def serve(
    service: EmailService,
    host: str,
    port: int,
    *,
    addresses: Collection[str],
    max_bytes: int,
    on_received: Callable[[Received], None],
) -> asyncio.Server:
    handler = _Handler(service, frozenset(addresses), max_bytes, on_received)
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: SMTP(
            handler,
            data_size_limit=max_bytes,
            enable_SMTPUTF8=True,
            decode_data=False,
            ident="Threadline ESMTP",
        ),
        host=host,
        port=port,
    )
