"""Short links on the people's origin, over real HTTP against SQLite and PostgreSQL: a code
leads (303) to exactly the signed link it stands for; an unknown, expired or withdrawn one is a
page in the candidate's language (404 / 410), never a stack trace; codes are long random base62
and the route is rate limited."""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared import revocations, shortlinks
from offerseal.shared.config import load_settings
from offerseal.shared.links import PURPOSE_REPLY, PURPOSE_SIGN, Link, LinkSigner
from offerseal.shared.models import ShortLink
from offerseal.shared.server import HttpServer

SIGNER = LinkSigner(b"s" * 32)


@pytest.fixture
def web(tmp_path: Path, database: Any) -> Iterator[dict[str, Any]]:
    from offerseal.web.app import create_app

    settings = load_settings({}, data_dir=tmp_path, public_rate_limit="40/minute")
    server = HttpServer(create_app(settings, database), "127.0.0.1", 0, 4).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        yield {
            "base": base,
            "db": database,
            "shortener": shortlinks.Shortener(database, base, SIGNER),
        }
    finally:
        server.stop()


def signed(
    purpose: str = PURPOSE_SIGN, ttl: float = 3600, agreement: str = "ag-1", age: int = 0
) -> Link:
    """A link issued `age` seconds ago, valid for `ttl` seconds from now."""
    now = int(time.time())
    return Link("acme", agreement, "cand-1", purpose, int(now + ttl), "", now - age)


def test_a_code_leads_to_exactly_its_signed_link(web: dict[str, Any]) -> None:
    link = signed()
    # a link another service built (the contracts service's signing link): its token decides
    target = f"https://contracts.example/v1/agreements/ag-1/typed-data?token={SIGNER.issue(link)}"
    reply = signed(PURPOSE_REPLY)
    reply_target = f"https://notify.example/v1/replies/{SIGNER.issue(reply)}?answer=delayed"
    shortener = web["shortener"]
    first, second = shortener.shorten(
        [shortener.wanted(target, signed()), shortener.wanted(reply_target, signed())]
    )
    assert re.fullmatch(re.escape(web["base"]) + r"/l/[0-9A-Za-z]{12}", first)
    assert first != second
    answer = requests.get(first, allow_redirects=False, timeout=10)
    assert answer.status_code == 303 and answer.headers["Location"] == target
    assert answer.headers["Cache-Control"] == "no-store"
    assert requests.get(second, allow_redirects=False, timeout=10).headers["Location"] == (
        reply_target
    )
    with web["db"].sessions() as session:
        row = session.get(ShortLink, second.rsplit("/", 1)[1])
        assert (row.purpose, row.agreement_id) == (PURPOSE_REPLY, "ag-1")


@pytest.mark.parametrize(
    ("language", "words"), [("zh-CN", "此链接无效"), ("en", "This link does not work")]
)
def test_an_unknown_code_is_a_friendly_page(web: dict[str, Any], language: str, words: str) -> None:
    for code in ("AAAAAAAAAAAA", "short", "x" * 200, "%00", "A" * 11 + "é"):
        answer = requests.get(
            f"{web['base']}/l/{code}", headers={"Accept-Language": language}, timeout=10
        )
        assert answer.status_code == 404, code
        assert answer.headers["Content-Type"].startswith("text/html")
        assert words in answer.text and "Traceback" not in answer.text
        assert f'lang="{language}"' in answer.text


def test_a_code_expires_and_dies_with_its_link(web: dict[str, Any]) -> None:
    shortener = web["shortener"]
    [expired] = shortener.shorten([shortlinks.Wanted("https://x.example/a", signed(ttl=-5))])
    answer = requests.get(expired, headers={"Accept-Language": "en"}, timeout=10)
    assert answer.status_code == 410 and "This link has expired" in answer.text

    # issued seconds before the withdrawal below (not merely in its second, which counts too)
    [live, other] = shortener.shorten(
        [
            shortlinks.Wanted("https://x.example/b", signed(agreement="ag-2", age=5)),
            shortlinks.Wanted("https://x.example/c", signed(agreement="ag-3", age=5)),
        ]
    )
    assert requests.get(live, allow_redirects=False, timeout=10).status_code == 303
    with web["db"].transaction() as session:
        revocations.revoke(
            session, tenant="acme", agreement_id="ag-2", reason="sent by mistake", by="test"
        )
    withdrawn = requests.get(live, headers={"Accept-Language": "zh-CN"}, timeout=10)
    assert withdrawn.status_code == 410 and "此链接已撤回" in withdrawn.text
    assert requests.get(other, allow_redirects=False, timeout=10).status_code == 303


def test_codes_are_random_base62_of_twelve(web: dict[str, Any]) -> None:
    codes = {shortlinks.new_code() for _ in range(2000)}
    assert len(codes) == 2000
    assert all(shortlinks.CODE.match(c) for c in codes)
    assert len(set("".join(codes))) == 62  # every symbol used: about 71 bits per code


def test_guessing_codes_is_rate_limited(web: dict[str, Any]) -> None:
    statuses = [
        requests.get(f"{web['base']}/l/{shortlinks.new_code()}", timeout=10).status_code
        for _ in range(45)
    ]
    assert statuses[:40] == [404] * 40
    assert 429 in statuses[40:]


def test_expired_rows_are_old_enough_to_sweep(database: Any) -> None:
    """Retention deletes short links once they are past their expiry and the retention age."""
    from offerseal.shared import retention

    shortener = shortlinks.Shortener(database, "https://p.example", SIGNER)
    [old] = shortener.shorten([shortlinks.Wanted("https://x.example/old", signed(ttl=-86400))])
    [new] = shortener.shorten([shortlinks.Wanted("https://x.example/new", signed(ttl=86400))])
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    deleted = retention.sweep(database, retention=3600, link_ttl=3600, now=later)
    assert deleted["short_links"] == 1
    with database.sessions() as session:
        assert session.get(ShortLink, old.rsplit("/", 1)[1]) is None
        assert session.get(ShortLink, new.rsplit("/", 1)[1]) is not None
