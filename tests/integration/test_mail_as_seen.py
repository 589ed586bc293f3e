"""Messages as a candidate sees them: every kind, in zh-CN and en, composed by the notify service
with a tenant's branding, sent through a real SMTP server (aiosmtpd) with a DKIM signature,
then opened at phone width (390 px) in headless Chromium. Checks: the signature verifies with
dkimpy against the published key; the sender names the employer and Reply-To reaches HR; no line
of visible text (plain or rendered HTML) holds a token, a UUID or anything token-like; each
short link leads over real HTTP to exactly the signed link; the layout fits 390 px without
sideways scrolling; one button per purpose. Screenshots go to test-artifacts/mail/.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.notify.adapters.channels import SmtpChannel
from offerseal.notify.adapters.signing import DkimSigner
from offerseal.notify.domain import schedule
from offerseal.notify.models import FollowedAgreement, NotifyCandidate, TenantBranding, Touchpoint
from offerseal.notify.service import NotifyService
from offerseal.shared import revocations
from offerseal.shared.config import load_settings
from offerseal.shared.links import PURPOSE_AMEND, PURPOSE_SIGN, Link, LinkSigner
from offerseal.shared.server import HttpServer
from offerseal.shared.shortlinks import Shortener
from tests.conftest import ROOT, free_port
from tests.integration.test_verify_page import CHROMIUM_FLAGS, _browser_paths

ARTIFACTS = ROOT / "test-artifacts" / "mail"
WIDTH = 390
SELECTOR, DOMAIN = "os2026", "mail.offerseal.test"
SENDER = f"OfferSeal <no-reply@{DOMAIN}>"
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
TOKENISH = re.compile(r"[A-Za-z0-9_\-]{25,}")  # a base64url token body, a hex key...
LONG_RUN = re.compile(r"[!-~]{41,}")  # more than 40 printable ASCII characters without a space
KINDS = [
    (schedule.INVITATION, True, {"due_at": "2026-12-05T10:00:00+00:00"}),
    (schedule.CHECKIN, True, {}),
    (
        schedule.MILESTONE_REQUEST,
        True,
        {"milestone": "resignation_accepted", "due_at": "2026-12-20T15:59:59+00:00"},
    ),
    (schedule.WEEKLY_UPDATE, False, {}),
    (schedule.WELCOME_PACKAGE, False, {}),
    (schedule.AMENDMENT, True, {"start_at": "2027-01-11", "reason": "", "stage": "committed"}),
    (schedule.CLOSING, True, {"state": "fulfilled"}),
]
BUTTONS = {schedule.CHECKIN: 4, schedule.INVITATION: 1, schedule.MILESTONE_REQUEST: 1}
BUTTONS[schedule.AMENDMENT] = 1


def visible_problems(text: str) -> list[str]:
    """Lines of visible text that hold something a candidate should never see."""
    patterns = (UUID, TOKENISH, LONG_RUN)
    return [
        line
        for line in text.splitlines()
        if "token=" in line or any(p.search(line) for p in patterns)
    ]


class RawMailbox:
    """aiosmtpd handler keeping each message's bytes exactly as received (for DKIM)."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.raw.append(bytes(envelope.content))
        return "250 OK"

    def wait(self, count: int, timeout: float = 30.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while len(self.raw) < count and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(self.raw) >= count, f"{len(self.raw)} of {count} messages arrived"
        return list(self.raw)


@pytest.fixture
def mailbox() -> Iterator[tuple[RawMailbox, str]]:
    from aiosmtpd.controller import Controller

    handler = RawMailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, f"smtp://127.0.0.1:{port}"
    controller.stop()


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--allow-file-access-from-files")
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-mail')}")
    options.add_argument(f"--window-size={WIDTH},900")
    # chromedriver on a port from the harness (Selenium's own pick is a released port 0)
    service = Service(executable_path=driver_path, port=free_port())
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": WIDTH, "height": 900, "deviceScaleFactor": 2, "mobile": True},
    )
    yield driver
    driver.quit()


@pytest.fixture
def dkim_key(tmp_path: Path) -> Path:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_every_message_as_a_candidate_sees_it(
    tmp_path: Path,
    sqlite_url: str,
    mailbox: tuple[RawMailbox, str],
    dkim_key: Path,
    browser: Any,
) -> None:
    import dkim

    from offerseal.notify.adapters.signing import signer_from
    from offerseal.shared.db import Database
    from offerseal.web.app import create_app

    box, smtp_url = mailbox
    settings = load_settings(
        {},
        data_dir=tmp_path,
        mail_from=SENDER,
        dkim_selector=SELECTOR,
        dkim_private_key=str(dkim_key),
        public_rate_limit="10000/minute",
    )
    signer = signer_from(settings)
    assert isinstance(signer, DkimSigner)
    db = Database(sqlite_url)
    db.migrate()
    web = HttpServer(create_app(settings, db), "127.0.0.1", 0, 4).start()
    people = f"http://127.0.0.1:{web.port}"
    links = LinkSigner(b"m" * 32, revocations.checker(db))
    service = NotifyService(
        db,
        links,
        {"email": SmtpChannel(smtp_url, SENDER, signer=signer)},
        public_url="https://notify.offerseal.test",
        evidence_url="https://evidence.offerseal.test",
        checkin_interval=48 * 3600,
        quiet_hours="00:00-00:00",
        default_timezone="Asia/Shanghai",
        mail_domain=DOMAIN,
        shortener=Shortener(db, people, links),
    )
    signing_links: dict[str, str] = {}
    try:
        with db.transaction() as session:
            session.add(
                TenantBranding(
                    tenant="acme",
                    display_name="Acme Robotics",
                    accent_colour="#00703c",
                    reply_to="hr@acme-robotics.test",
                    updated_by="test",
                )
            )
            for language in ("zh-CN", "en"):
                agreement = str(uuid.uuid4())
                ref = f"cand-{language}"
                session.add(
                    NotifyCandidate(
                        tenant="acme",
                        candidate_ref=ref,
                        email=f"{ref}@example.com",
                        timezone="Asia/Shanghai",
                        language=language,
                        quiet_hours="00:00-00:00",
                        channels=["email"],
                    )
                )
                session.add(
                    FollowedAgreement(
                        agreement_id=agreement,
                        tenant="acme",
                        candidate_ref=ref,
                        language=language,
                        employer_name="Acme Robotics Co., Ltd.",
                        position="Senior Firmware Engineer",
                        start_at=dt.datetime(2027, 1, 4, 1, tzinfo=dt.UTC),
                        milestones=[],
                        state="committed",
                    )
                )
                for kind, essential, data in KINDS:
                    data = dict(data)
                    if kind in (schedule.INVITATION, schedule.AMENDMENT):
                        # the link exactly as the contracts service builds it
                        purpose = PURPOSE_SIGN if kind == schedule.INVITATION else PURPOSE_AMEND
                        token = links.issue(
                            Link(
                                "acme",
                                agreement,
                                ref,
                                purpose,
                                int(time.time() + 86400),
                                "",
                                int(time.time()),
                            )
                        )
                        path = (
                            "typed-data" if purpose == PURPOSE_SIGN else "amendments/x/typed-data"
                        )
                        data["sign"] = (
                            f"https://contracts.offerseal.test/v1/agreements/{agreement}/"
                            f"{path}?token={token}"
                        )
                        signing_links[f"{kind}-{language}"] = data["sign"]
                    session.add(
                        Touchpoint(
                            id=str(uuid.uuid4()),
                            key=f"{agreement}:{kind}:1",
                            tenant="acme",
                            agreement_id=agreement,
                            candidate_ref=ref,
                            kind=kind,
                            occurrence=1,
                            essential=essential,
                            due_at=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1),
                            data=data,
                        )
                    )
        assert service.dispatch_once() == 2 * len(KINDS)
        raws = box.wait(2 * len(KINDS))
        assert len(raws) == 2 * len(KINDS)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

        def dns(name: bytes, timeout: int = 5) -> bytes | None:
            wanted = f"{SELECTOR}._domainkey.{DOMAIN}.".encode()
            return signer.public_record().encode() if name == wanted else None

        seen: set[tuple[str, str]] = set()
        for raw in raws:
            assert dkim.verify(raw, dnsfunc=dns), "the DKIM signature must verify"
            message = email.message_from_bytes(raw, policy=email.policy.default)
            with db.sessions() as session:
                tp = session.get(Touchpoint, message["X-OfferSeal-Touchpoint"])
                assert tp is not None
                kind, language = tp.kind, tp.candidate_ref.removeprefix("cand-")
            seen.add((kind, language))
            [sender] = message["From"].addresses
            assert sender.display_name == "Acme Robotics via OfferSeal"
            assert sender.addr_spec == f"no-reply@{DOMAIN}"
            assert message["Reply-To"] == "hr@acme-robotics.test"

            plain = str(message.get_body(preferencelist=("plain",)).get_content())
            assert visible_problems(plain) == [], (kind, language, visible_problems(plain))
            assert "Acme Robotics" in plain
            targets = []
            for url in re.findall(r"https?://\S+", plain):
                assert url.startswith(people + "/l/"), url  # only short links are shown
                answer = requests.get(url, allow_redirects=False, timeout=10)
                assert answer.status_code == 303, url
                targets.append(answer.headers["Location"])
            if kind in (schedule.INVITATION, schedule.AMENDMENT):
                # exactly the link the contracts service built, not one rebuilt by notify
                assert targets[0] == signing_links[f"{kind}-{language}"]
            if kind == schedule.CHECKIN:
                assert [t.rsplit("=", 1)[1] for t in targets] == [
                    "on_track",
                    "delayed",
                    "need_help",
                    "withdrawing",
                ]
            if kind == schedule.MILESTONE_REQUEST:
                assert targets[0].startswith("https://evidence.offerseal.test/v1/uploads/")

            html_part = str(message.get_body(preferencelist=("html",)).get_content())
            page = tmp_path / f"{kind}-{language}.html"
            page.write_text(html_part, encoding="utf-8")
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": 700, "deviceScaleFactor": 2, "mobile": True},
            )
            browser.get(page.as_uri())
            width = browser.execute_script("return document.documentElement.scrollWidth")
            assert width <= WIDTH, f"{kind} {language}: {width} px wide, scrolls sideways"
            shown = browser.execute_script("return document.body.innerText")
            assert visible_problems(shown) == [], (kind, language, visible_problems(shown))
            assert "Acme Robotics" in shown
            buttons = browser.execute_script(
                "return [...document.querySelectorAll('a.button-link')]"
                ".filter(a => a.getBoundingClientRect().width >= 200).length"
            )
            assert buttons == BUTTONS.get(kind, 0), (kind, language, buttons)
            height = browser.execute_script(
                "return Math.ceil(document.querySelector('table.outer')"
                ".getBoundingClientRect().bottom)"
            )
            browser.execute_cdp_cmd(
                "Emulation.setDeviceMetricsOverride",
                {"width": WIDTH, "height": int(height), "deviceScaleFactor": 2, "mobile": True},
            )
            browser.save_screenshot(str(ARTIFACTS / f"{kind}-{language}.png"))
            (ARTIFACTS / f"{kind}-{language}.eml").write_bytes(raw)
        assert seen == {(k, lang) for k, _, _ in KINDS for lang in ("zh-CN", "en")}
    finally:
        service.channels["email"].close()
        web.stop()
        db.dispose()
