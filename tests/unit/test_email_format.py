"""The e-mail OfferSeal composes itself, read back by the standard library's parser: the same
subject, bodies and headers as the EmailMessage API would give, no header injection."""

from __future__ import annotations

import email
import email.policy

import pytest

from offerseal.notify.adapters.channels import Outgoing, email_bytes
from offerseal.notify.domain.templates import Rendered

LONG_SUBJECT = "入职意向书日期变更，请确认：" + "北京某某科技有限公司高级固件工程师" * 4


def parse(raw: bytes) -> email.message.EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


@pytest.mark.parametrize("subject", ["Please sign", LONG_SUBJECT])
@pytest.mark.parametrize("essential", [True, False])
def test_the_message_parses_back_to_what_was_rendered(subject: str, essential: bool) -> None:
    rendered = Rendered(
        subject, "您好\n\n链接: https://x.test/a?b=1\n", "<p>您好 <a href='x'>x</a></p>"
    )
    out = Outgoing(
        "0b7c2a4e-1111-2222-3333-444455556666",
        "<0b7c2a4e-1111-2222-3333-444455556666@offerseal.local>",
        "cand@example.com",
        rendered,
        essential,
        "https://x.test/v1/unsubscribe/tok",
        {},
    )
    raw = email_bytes(out, "OfferSeal 招聘 <noreply@offerseal.local>")
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")  # CRLF only
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    message = parse(raw)
    assert message["Subject"] == subject
    assert message["To"] == "cand@example.com"
    assert message["From"].addresses[0].display_name == "OfferSeal 招聘"
    assert message["Message-ID"] == out.message_id
    assert message["X-OfferSeal-Touchpoint"] == out.touchpoint_id
    plain = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert plain is not None and html is not None
    assert plain.get_content() == rendered.text
    assert html.get_content() == rendered.html
    if essential:
        assert message["List-Unsubscribe"] is None
    else:
        assert message["List-Unsubscribe"] == "<https://x.test/v1/unsubscribe/tok>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_a_line_break_in_the_subject_cannot_add_a_header() -> None:
    rendered = Rendered("Hello\r\nBcc: victim@example.com", "x\n", "<p>x</p>")
    out = Outgoing("t1", "<t1@x>", "cand@example.com", rendered, True, None, {})
    message = parse(email_bytes(out, "noreply@offerseal.local"))
    assert message["Bcc"] is None
    assert message["Subject"] == "Hello Bcc: victim@example.com"
