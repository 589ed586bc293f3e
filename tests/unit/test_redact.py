"""Credentials never leave in a URL: user-info, path keys and query tokens."""

from __future__ import annotations

import logging

import pytest

from offerseal.shared.redact import RedactingFilter, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("https://mainnet.infura.io/v3/9aa3d95b3bc440fa88ea12eaa4456161", "9aa3d95b3bc440fa"),
        ("https://eth-mainnet.g.alchemy.com/v2/Zx81kP_3aQ9vR2mT7uY5wB1c", "Zx81kP_3aQ9vR2mT"),
        ("https://hooks.example/send?access_token=abc123secret&x=1", "abc123secret"),
        ("smtp+starttls://mailer:p4ssw0rd@smtp.example:587", "p4ssw0rd"),
        ("https://apikey123@rpc.example/", "apikey123"),
    ],
)
def test_the_secret_is_gone_and_the_host_stays(url: str, secret: str) -> None:
    redacted = redact_url(url)
    assert secret not in redacted
    assert "***" in redacted
    assert url.split("://")[1].split("/")[0].rpartition("@")[2] in redacted


def test_plain_urls_are_unchanged() -> None:
    assert redact_url("http://127.0.0.1:8545") == "http://127.0.0.1:8545"
    assert redact_url("sqlite:////var/lib/offerseal/x.db") == "sqlite:////var/lib/offerseal/x.db"
    assert redact_url("memory://") == "memory://"
    assert redact_url("https://example.com/v1/verify?limit=5") == (
        "https://example.com/v1/verify?limit=5"
    )


def test_urls_inside_text_are_redacted() -> None:
    text = "HTTPConnectionPool: Max retries with url https://rpc.example/v3/9aa3d95b3bc440fa88ea1"
    assert "9aa3d95b3bc440fa88ea1" not in redact_text(text)


def test_log_lines_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.redact")
    handler = caplog.handler
    handler.addFilter(RedactingFilter())
    try:
        logger.warning("webhook %s failed", "https://h.example/x?token=s3cr3tvalue")
    finally:
        handler.removeFilter(handler.filters[-1])
    assert "s3cr3tvalue" not in caplog.text


def test_a_quoted_path_with_a_token_is_redacted() -> None:
    text = "Max retries exceeded with url: /hook?access_token=s3cr3t&x=1 (Caused by ...)"
    redacted = redact_text(text)
    assert "s3cr3t" not in redacted and "x=1" in redacted


def test_database_and_broker_urls_keep_their_user_and_lose_their_password() -> None:
    assert redact_url("postgresql+psycopg://offerseal:s3cret@db:5432/offerseal") == (
        "postgresql+psycopg://offerseal:***@db:5432/offerseal"
    )
    assert (
        redact_url("amqp://guest:guest-pw@127.0.0.1:5672//") == "amqp://guest:***@127.0.0.1:5672//"
    )
