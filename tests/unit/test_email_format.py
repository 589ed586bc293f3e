"""The e-mail OfferSeal composes itself, read back by the standard library's parser: the same
subject, bodies and headers as the EmailMessage API would give, no header injection."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

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


def test_the_sender_shows_the_employer_and_replies_reach_hr() -> None:
    rendered = Rendered("Please sign", "x\n", "<p>x</p>")
    out = Outgoing(
        "t2", "<t2@x>", "cand@example.com", rendered, True, None, {}, "Acme Robotics", "hr@acme.cn"
    )
    message = parse(email_bytes(out, "OfferSeal <no-reply@mail.offerseal.cn>"))
    [sender] = message["From"].addresses
    assert sender.display_name == "Acme Robotics via OfferSeal"
    assert sender.addr_spec == "no-reply@mail.offerseal.cn"
    assert message["Reply-To"] == "hr@acme.cn"
    plain = Outgoing("t3", "<t3@x>", "cand@example.com", rendered, True, None, {})
    assert parse(email_bytes(plain, "no-reply@x.cn"))["Reply-To"] is None


def test_dkim_signed_mail_verifies_against_the_published_key(tmp_path: Path) -> None:
    import dkim
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    from offerseal.notify.adapters.signing import signer_from
    from offerseal.shared.config import load_settings

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(  # PKCS#8, as `openssl genpkey` writes it
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "dkim.pem").write_bytes(pem)
    settings = load_settings(
        {
            "OFFERSEAL_MAIL_FROM": "OfferSeal <no-reply@mail.offerseal.cn>",
            "OFFERSEAL_DKIM_SELECTOR": "os2026",
            "OFFERSEAL_DKIM_PRIVATE_KEY": str(tmp_path / "dkim.pem"),
        }
    )
    signer = signer_from(settings)
    assert signer is not None and signer.record_name == "os2026._domainkey.mail.offerseal.cn"
    assert "(set)" in str(settings.redacted()["OFFERSEAL_DKIM_PRIVATE_KEY"])
    rendered = Rendered(
        LONG_SUBJECT, "您好\n\n链接: https://x.test/l/Ab3x9QzK12Lm\n", "<p>您好</p>"
    )
    out = Outgoing(
        "t4", "<t4@x>", "cand@example.com", rendered, False, "https://x.test/u", {}, "Acme"
    )
    raw = email_bytes(out, settings.mail_from, signer)
    assert raw.startswith(b"DKIM-Signature: ")

    def dns(name: bytes, timeout: int = 5) -> bytes | None:
        return (
            signer.public_record().encode()
            if name == b"os2026._domainkey.mail.offerseal.cn."
            else None
        )

    assert dkim.verify(raw, dnsfunc=dns)
    assert parse(raw)["Subject"] == LONG_SUBJECT
    altered = raw.replace(b"Subject: ", b"Subject: Re: ", 1)
    assert not dkim.verify(altered, dnsfunc=dns)
    with pytest.raises(Exception, match="OFFERSEAL_DKIM"):
        load_settings({"OFFERSEAL_DKIM_SELECTOR": "os2026"})  # a selector without a key
