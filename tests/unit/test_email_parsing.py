"""Inbound mail parsing: the visitor's own words, nothing quoted, no signature, HTML as text,
attachments as metadata only, and the threading headers."""

from __future__ import annotations

from email.message import EmailMessage

import pytest

from threadline.app.events import register_event_types
from threadline.channels.email.errors import MalformedMailError
from threadline.channels.email.parsing import parse, visible_text


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = headers.pop("From", "Ann Visitor <Ann@Example.COM>")
    msg["To"] = "support@threadline.test"
    msg["Subject"] = headers.pop("Subject", "My claim")
    msg["Message-ID"] = headers.pop("Message_ID", "<m1@example.com>")
    for name, value in headers.items():
        msg[name.replace("_", "-")] = value
    return msg


def test_plain_text_keeps_only_the_new_reply() -> None:
    msg = message()
    msg.set_content(
        "Is the January claim paid?\n\n"
        "On Fri, 20 Nov 2026 at 10:00, Support <support@threadline.test> wrote:\n"
        "> Your claim CLM-4411 is in review.\n> Regards\n"
    )
    mail = parse(bytes(msg))
    assert mail.text == "Is the January claim paid?"
    assert mail.sender == "ann@example.com"
    assert mail.subject == "My claim"
    assert mail.message_id == "<m1@example.com>"


def test_signature_is_stripped() -> None:
    assert visible_text("Please call me back.\n\n-- \nAnn Visitor\n+1 555 123") == (
        "Please call me back."
    )
    assert visible_text("Thanks for the update.\n\nBest regards,\nAnn") == (
        "Thanks for the update."
    )


def test_bare_quoted_lines_are_dropped() -> None:
    assert visible_text("Yes please.\n> earlier text\n> more") == "Yes please."


def test_html_only_mail_becomes_text() -> None:
    msg = message()
    msg.set_content(
        "<html><body><p>Is my <b>refund</b> on its way?</p>"
        "<div>On Mon, Support wrote:</div><blockquote>&gt; old news</blockquote></body></html>",
        subtype="html",
    )
    text = parse(bytes(msg)).text
    assert "refund" in text
    assert "<b>" not in text
    assert "old news" not in text


def test_plain_part_is_preferred_to_html() -> None:
    msg = message()
    msg.set_content("plain words")
    msg.add_alternative("<p>html words</p>", subtype="html")
    assert parse(bytes(msg)).text == "plain words"


def test_attachments_are_metadata_only() -> None:
    msg = message()
    msg.set_content("See attached.")
    msg.add_attachment(
        b"%PDF-" + b"x" * 95, maintype="application", subtype="pdf", filename="a.pdf"
    )
    msg.add_attachment(b"\x89PNG", maintype="image", subtype="png", filename="photo.png")
    mail = parse(bytes(msg))
    assert mail.text == "See attached."
    assert [(a.name, a.content_type, a.size) for a in mail.attachments] == [
        ("a.pdf", "application/pdf", 100),
        ("photo.png", "image/png", 4),
    ]


def test_threading_headers() -> None:
    msg = message(In_Reply_To="<r2@t.test>", References="<m0@example.com> <r1@t.test> <r2@t.test>")
    msg.set_content("ok")
    mail = parse(bytes(msg))
    assert mail.in_reply_to == "<r2@t.test>"
    assert mail.references == ("<m0@example.com>", "<r1@t.test>", "<r2@t.test>")
    assert mail.thread_ids == ("<r2@t.test>", "<r1@t.test>", "<m0@example.com>")


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"just some bytes without headers",
        b"From: ann@example.com\r\nSubject: no id\r\n\r\nhello\r\n",
        b"Message-ID: <x@example.com>\r\nSubject: no sender\r\n\r\nhello\r\n",
        b"From: not an address\r\nMessage-ID: <x@example.com>\r\n\r\nhello\r\n",
        b"From: ann@example.com\r\nMessage-ID: <x@e.com>\r\n"
        b"Content-Type: text/plain; charset=no-such-charset\r\n\r\nhello\r\n",
    ],
)
def test_malformed_mail_is_refused(raw: bytes) -> None:
    with pytest.raises(MalformedMailError):
        parse(raw)


@pytest.fixture(autouse=True)
def _event_types() -> None:
    """Built without the bootstrap: register the event types as every entry point does."""
    register_event_types()
