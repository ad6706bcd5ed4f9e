"""An inbound RFC 5322 message → what the ledger records: the visible text (HTML converted,
quoted history and signature stripped), subject, threading headers and attachment metadata.

Libraries (docs/email.md says why): the standard library's `email` parses MIME;
`html2text` turns an HTML-only body into text; `mail-parser-reply` finds where the quoted
history and the signature start (it knows many clients' "On … wrote:" lines, in several
languages). They are imported when a mail is parsed, not at import time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser

from threadline.channels.email.errors import MalformedMailError
from threadline.channels.email.events import EmailAttachment

MAX_TEXT = 8000  # MessagePosted.text
_MSGID = re.compile(r"<[^<>\s]+>")
_LANGUAGES = ["en", "de", "fr", "es", "it", "nl", "pl", "sv"]


@dataclass(frozen=True, slots=True)
class ParsedMail:
    message_id: str
    sender: str  # lower-cased bare address
    subject: str
    text: str  # what the visitor wrote in this mail, nothing quoted
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    attachments: tuple[EmailAttachment, ...] = field(default_factory=tuple)

    @property
    def thread_ids(self) -> tuple[str, ...]:
        """Message-IDs this mail answers, most specific first."""
        ids = [self.in_reply_to] if self.in_reply_to else []
        ids.extend(reversed(self.references))
        return tuple(dict.fromkeys(ids))


def parse(raw: bytes) -> ParsedMail:
    try:
        msg = BytesParser(policy=policy.default).parsebytes(raw)
    except Exception as exc:  # the parser is lenient; this is a truly broken input
        raise MalformedMailError(f"unparseable message: {exc}") from None
    if not isinstance(msg, EmailMessage) or not msg.keys():
        raise MalformedMailError("not an RFC 5322 message")
    message_id = _one_id(_header(msg, "Message-ID"))
    if message_id is None or len(message_id) > 998:
        raise MalformedMailError("the message has no valid Message-ID")
    sender = _sender(msg)
    subject = " ".join(_header(msg, "Subject").split())[:998]
    text = visible_text(_body(msg))
    attachments = tuple(_attachments(msg))
    in_reply_to = _one_id(_header(msg, "In-Reply-To"))
    if in_reply_to is not None and len(in_reply_to) > 998:
        in_reply_to = None
    refs = [r for r in _MSGID.findall(_header(msg, "References")) if len(r) <= 998]
    references = tuple(refs[-100:])
    return ParsedMail(message_id, sender, subject, text, in_reply_to, references, attachments)


def visible_text(body: str) -> str:
    """The newest reply in `body`: without the quoted history and without the signature."""
    from mailparser_reply import EmailReplyParser

    body = body.replace("\r\n", "\n").strip()
    if not body:
        return ""
    parsed = EmailReplyParser(languages=_LANGUAGES).read(body)
    replies = parsed.replies
    text = str(replies[0].body if replies else parsed.latest_reply or "").strip()
    # Quoted lines the parser left (a bare "> …" block without a header line).
    kept = [line for line in text.split("\n") if not line.lstrip().startswith(">")]
    text = "\n".join(kept).strip()
    return text[:MAX_TEXT]


def html_to_text(html: str) -> str:
    import html2text

    converter = html2text.HTML2Text()
    converter.body_width = 0  # no hard wrapping: the reply parser works on lines
    converter.ignore_images = True
    converter.ignore_links = False
    return converter.handle(html)


def _header(msg: EmailMessage, name: str) -> str:
    try:
        value = msg.get(name)
    except Exception:  # a header the policy cannot decode
        raise MalformedMailError(f"malformed {name} header") from None
    return str(value) if value is not None else ""


def _one_id(value: str) -> str | None:
    found = _MSGID.search(value)
    return found.group(0) if found else None


def _sender(msg: EmailMessage) -> str:
    try:
        header = msg["From"]
        addresses = getattr(header, "addresses", ()) if header is not None else ()
    except Exception:
        addresses = ()
    for address in addresses:
        if isinstance(address, Address) and address.username and address.domain:
            found = f"{address.username}@{address.domain}".lower()
            if len(found) <= 320:
                return found
    raise MalformedMailError("the message has no valid From address")


def _body(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain", "html"))
    if part is None:
        return ""
    try:
        content = part.get_content()
    except (LookupError, ValueError):  # unknown charset or broken transfer encoding
        raise MalformedMailError("the message body cannot be decoded") from None
    if not isinstance(content, str):
        return ""
    return html_to_text(content) if part.get_content_type() == "text/html" else content


def _attachments(msg: EmailMessage) -> list[EmailAttachment]:
    found = []
    for part in msg.iter_attachments():
        payload = part.get_payload(decode=True)
        size = len(payload) if isinstance(payload, bytes) else 0
        name = (part.get_filename() or "")[:255]
        found.append(
            EmailAttachment(name=name, content_type=part.get_content_type()[:255], size=size)
        )
    return found[:100]
