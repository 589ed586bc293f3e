"""The candidate's journey in a real browser (Debian's headless Chromium through Selenium, with
WebAuthn's virtual authenticator: CTAP2, internal transport, user verification), at phone width,
in zh-CN and en: the invitation e-mail's link opens the portal, the text and its fingerprint, the
one-time code from the e-mail, a passkey created on the "phone", the commitment signed and
Committed on Anvil, an amendment signed from its e-mail, and "I have arrived" on the first day.

Screenshots of every step go to test-artifacts/portal/<language>/ (a failing step keeps its
own). Outside CI the tests skip when Chromium or its driver is absent; under CI=true they fail."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from web3 import Web3

from tests.conftest import ROOT, RunningStack, api_link
from tests.console_browser import wait_until
from tests.integration.test_contracts_service import body
from tests.integration.test_notify import (
    Mailbox,
    mailbox,
    notify_stack,
    short_links_in,
    text_of,
)
from tests.integration.test_notify import live_links_in as links_in
from tests.integration.test_verify_page import WIDTH, start_chromium

__all__ = ["mailbox"]


pytestmark = [pytest.mark.chain]
ARTIFACTS = ROOT / "test-artifacts" / "portal"
WORDS = {
    "zh-CN": {"signed": "已签署", "arrived": "欢迎加入", "amended": "新日期已签署"},
    "en": {"signed": "Signed", "arrived": "Welcome", "amended": "New dates signed"},
}


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-portal"), WIDTH, 780)
    yield driver
    driver.quit()


@pytest.fixture
def portal(
    tmp_path: Path, sqlite_url: str, fresh_anvil: Any, mailbox: tuple[Mailbox, str]
) -> Iterator[tuple[RunningStack, Mailbox]]:
    box, smtp_url = mailbox
    # Waiting for a message follows every short link in the box at each look, against the
    # origin's limit on anonymous calls (check-ins come every 3 s): not what this tests.
    stack = notify_stack(
        tmp_path,
        sqlite_url,
        fresh_anvil,
        smtp_url=smtp_url,
        checkin_interval=3.0,
        public_rate_limit="100000/minute",
    )
    try:
        yield stack, box
    finally:
        stack.stack.stop()


class Journey:
    def __init__(self, driver: Any, language: str) -> None:
        self.driver = driver
        self.folder = ARTIFACTS / language
        self.folder.mkdir(parents=True, exist_ok=True)
        self.n = 0

    def shot(self, name: str, from_element: str = "") -> None:
        """The whole page, or from an element's top to the page's end (the README's crops)."""
        import base64

        height = self.driver.execute_script("return document.documentElement.scrollHeight")
        top = 0
        if from_element:
            top = max(
                0,
                int(
                    self.driver.execute_script(
                        "return document.getElementById(arguments[0]).getBoundingClientRect()"
                        ".top + window.scrollY",
                        from_element,
                    )
                )
                - 16,  # a margin above the section's heading
            )
        data = self.driver.execute_cdp_cmd(
            "Page.captureScreenshot",
            {
                "format": "png",
                "captureBeyondViewport": True,
                "clip": {"x": 0, "y": top, "width": WIDTH, "height": height - top, "scale": 1},
            },
        )
        (self.folder / f"{name}.png").write_bytes(base64.b64decode(data["data"]))

    def step(self, name: str) -> Any:
        from contextlib import contextmanager

        self.n += 1
        label = f"{self.n:02d}-{name}"

        @contextmanager
        def run() -> Iterator[None]:
            try:
                yield
            except BaseException:
                self.shot(f"{label}-FAILED")
                raise
            self.shot(label)

        return run()

    def wait(self, condition: Any, timeout: float = 60.0) -> Any:
        return wait_until(self.driver, condition, timeout)

    def visible(self, element_id: str, timeout: float = 60.0) -> Any:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support import expected_conditions as ec

        return self.wait(ec.visibility_of_element_located((By.ID, element_id)), timeout)

    def click(self, element_id: str) -> None:
        from selenium.webdriver.common.keys import Keys

        element = self.visible(element_id)
        self.wait(lambda d: element.is_enabled())
        # Keyboard, as someone without a mouse would.
        element.send_keys(Keys.ENTER) if element.tag_name == "button" else element.click()

    def fits_phone(self) -> None:
        width = self.driver.execute_script("return document.documentElement.scrollWidth")
        assert width <= WIDTH, f"the page is {width}px wide: it scrolls sideways at {WIDTH}px"

    def read_to_the_end(self) -> None:
        from selenium.webdriver.common.by import By

        self.driver.execute_script("document.getElementById('text-end').scrollIntoView()")
        consent = self.driver.find_element(By.ID, "consent")
        self.wait(lambda d: consent.is_enabled())
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", consent)
        consent.click()


def add_authenticator(driver: Any) -> Any:
    from selenium.webdriver.common.virtual_authenticator import (
        Protocol,
        Transport,
        VirtualAuthenticatorOptions,
    )

    options = VirtualAuthenticatorOptions(
        protocol=Protocol.CTAP2,
        transport=Transport.INTERNAL,
        has_resident_key=True,
        has_user_verification=True,
        is_user_verified=True,
    )
    driver.add_virtual_authenticator(options)
    return driver


def state_on_chain(stack: RunningStack, onchain_id: str) -> int:
    client = stack.stack.contracts.service.client
    return int(client.functions.stateOf(bytes.fromhex(onchain_id[2:])).call())


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_a_candidate_signs_from_a_phone_with_a_passkey(
    portal: tuple[RunningStack, Mailbox], browser: Any, language: str
) -> None:
    from selenium.webdriver.common.by import By

    stack, box = portal
    driver = add_authenticator(browser)
    journey = Journey(driver, language)
    web = stack.stack.urls["web"]
    tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).date().isoformat()
    contact = {
        "email": f"li.{language.lower()}@example.com",
        "timezone": "Asia/Shanghai",
        "language": language,
    }
    offered = requests.post(
        web + "/v1/agreements",
        headers=stack.hr,
        json=body(
            candidate_address=None,
            language=language,
            candidate_contact=contact,
            # due tomorrow: its document request goes out at once
            milestones=[{"kind": "resignation_submitted", "due": tomorrow}],
        ),
        timeout=60,
    )
    assert offered.status_code == 201, offered.text
    agreement = offered.json()
    try:
        [invitation] = box.wait(lambda m: agreement["id"] in " ".join(links_in(m)))
        link = next(u for u in links_in(invitation) if "/portal/" in u)

        with journey.step("text"):
            driver.get(f"{link}&lang={language}")
            journey.visible("terms-section")
            text = driver.find_element(By.ID, "agreement-text").text
            assert "Acme Robotics" in text
            assert driver.find_element(By.ID, "terms-hash").text == agreement["terms_hash"]
            check = driver.find_element(By.ID, "hash-check").text
            assert check and ("同" in check if language == "zh-CN" else "same fingerprint" in check)
            assert driver.find_element(By.ID, "consent").is_enabled() is False
            journey.fits_phone()

        with journey.step("withdrawn-link"):
            # A link altered (or withdrawn, or expired) says so, and who to ask, in words.
            driver.get(f"{link[:-3]}xyz&lang={language}")
            summary = journey.visible("error-summary")
            expected = "联系发送邮件的 HR" if language == "zh-CN" else "ask the HR contact"
            assert expected in summary.text, summary.text
            assert "Traceback" not in driver.page_source
            driver.get(f"{link}&lang={language}")
            journey.visible("terms-section")

        with journey.step("code"):
            seen = len(box.messages)
            journey.click("send-email")
            journey.visible("group-code")
            [mail] = box.wait(
                lambda m: (
                    box.messages.index(m) >= seen
                    and ("code" in m["Subject"].lower() or "验证码" in m["Subject"])
                )
            )[-1:]
            code = re.search(r"\b(\d{6})\b", text_of(mail))
            assert code, text_of(mail)
            driver.find_element(By.ID, "code").send_keys(
                "000000" if code.group(1) != "000000" else "111111"
            )
            journey.click("code-check")
            journey.visible("error-summary")
            field = driver.find_element(By.ID, "code")
            field.clear()
            field.send_keys(code.group(1))
            journey.click("code-check")
            journey.visible("code-ok")

        with journey.step("passkey"):
            journey.click("key-create")
            journey.visible("key-ok")
            assert not driver.find_element(By.ID, "error-summary").is_displayed()

        with journey.step("ceremony"):
            # Before signing: the record the signature also covers, its fingerprint computed
            # by the page itself.
            journey.read_to_the_end()
            journey.visible("ceremony-section")
            fingerprint = driver.find_element(By.ID, "ceremony-hash").text
            assert re.fullmatch(r"0x[0-9a-f]{64}", fingerprint), fingerprint
            record = driver.find_element(By.ID, "ceremony").text
            if language == "zh-CN":  # the key's kind and the code's channel in Chinese too
                assert "通行密钥" in record and "邮箱" in record, record
                assert not re.search(r"passkey|email|[(]e-mail[)]", record), record
            journey.fits_phone()
            journey.shot(f"ceremony-section-{language}", from_element="ceremony-section")

        with journey.step("signed"):
            journey.click("sign")
            done = journey.visible("done")
            assert WORDS[language]["signed"] in done.text
            assert state_on_chain(stack, agreement["onchain_id"]) == 2  # Committed
            journey.visible("progress-section")
            assert (
                driver.find_element(By.ID, "download-record")
                .get_attribute("href")
                .startswith("blob:")
            )
            journey.fits_phone()

        record = requests.get(
            web + f"/v1/agreements/{agreement['id']}/signing-record",
            headers=stack.legal,
            timeout=30,
        ).json()
        kinds = [e["kind"] for e in record["events"]]
        for expected in (
            "text_opened",
            "text_read",
            "consent",
            "code_verified",
            "signer_bound",
            "passkey_assertion",
            "signed",
        ):
            assert expected in kinds, kinds
        assert record["ceremony_hash"] == fingerprint  # what the page showed is what was signed
        assert record["ceremony"]["consent"]["given_at"] and record["ceremony"]["text"]["read_at"]
        assertion = next(e for e in record["events"] if e["kind"] == "passkey_assertion")
        assert assertion["detail"]["flags"]["user_verified"] is True
        assert "Chrome" in (assertion["user_agent"] or "")

        with journey.step("checkin"):
            # The check-in e-mail's "delayed" button lands in the portal with it chosen.
            [checkin] = box.wait(lambda m: any("/v1/replies/" in u for u in links_in(m)))[-1:]
            delayed = next(u for u in short_links_in(checkin) if "/l/" in u)
            for url in short_links_in(checkin):
                target = requests.get(url, allow_redirects=False, timeout=30).headers.get(
                    "Location", ""
                )
                if "answer=delayed" in target:
                    delayed = url
            driver.get(delayed)  # short link -> reply link -> the portal, as a browser follows
            journey.visible("checkin")
            assert "/portal/" in driver.current_url and "/reply" in driver.current_url
            assert driver.find_element(By.ID, "answer-delayed").is_selected()
            journey.visible("group-new-date")
            new_date = driver.find_element(By.ID, "new-date")
            driver.execute_script(
                "arguments[0].value = arguments[1]",
                new_date,
                (dt.date.fromisoformat(body()["start_date"]) + dt.timedelta(days=5)).isoformat(),
            )
            journey.click("checkin-send")
            journey.visible("checkin-done")
            touchpoints = requests.get(
                stack.stack.urls["notify"]
                + f"/v1/candidates/{body()['candidate_ref']}/touchpoints",
                headers=stack.hr,
                timeout=30,
            ).json()["items"]
            assert any(t["answer"] == "delayed" for t in touchpoints), touchpoints
            driver.get(f"{link}&lang={language}")  # back in the portal: messages, the upload
            journey.visible("messages-section")

        with journey.step("upload"):
            journey.visible("uploads")
            stamped = Path(journey.folder / "stamped-resignation.txt")
            stamped.write_text("Resignation application, stamped by the employer\n")
            driver.find_element(By.ID, "upload-0").send_keys(str(stamped))
            journey.click("upload-send-0")
            journey.visible("upload-done-0")
            base = web + f"/v1/agreements/{agreement['id']}"
            document_id = journey.wait(
                lambda d: requests.get(base, headers=stack.hr, timeout=30).json()["milestones"][0][
                    "document_id"
                ]
            )
            confirmed = requests.post(
                base + "/milestones/resignation_submitted/evidence",
                headers=stack.hr,
                json={"document_id": document_id},
                timeout=60,
            )
            assert confirmed.status_code == 200, confirmed.text
            driver.get(f"{link}&lang={language}")
            journey.visible("progress-section")
            journey.wait(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#milestones .milestone--confirmed")
            )

        with journey.step("amendment"):
            start = dt.date.fromisoformat(body()["start_date"]) + dt.timedelta(days=3)
            proposed = requests.post(
                web + f"/v1/agreements/{agreement['id']}/amendments",
                headers=stack.hr,
                json={"start_date": start.isoformat(), "reason": "longer handover"},
                timeout=60,
            )
            assert proposed.status_code == 201, proposed.text
            [mail] = box.wait(
                lambda m: any(f"/portal/{agreement['id']}/amendments/" in u for u in links_in(m))
            )
            amend_link = next(u for u in links_in(mail) if "/amendments/" in u)
            driver.get(f"{amend_link}&lang={language}")
            journey.visible("terms-section")
            journey.read_to_the_end()
            journey.click("sign")
            done = journey.visible("done")
            assert WORDS[language]["amended"] in done.text
            item = requests.get(api_link(amend_link), timeout=30).json()
            assert item["state"] == "applied"

        with journey.step("arrival"):
            w3 = Web3(Web3.HTTPProvider(stack.rpc_url))
            start_at = dt.datetime.fromisoformat(
                requests.get(api_link(link, "/enrolment"), timeout=30).json()["agreement"][
                    "start_at"
                ]
            )
            now = int(w3.eth.get_block("latest")["timestamp"])
            w3.provider.make_request("evm_increaseTime", [int(start_at.timestamp()) - now + 600])  # type: ignore[arg-type]
            w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
            driver.get(f"{link}&lang={language}")
            journey.click("arrive")
            done = journey.visible("done")
            assert WORDS[language]["arrived"] in done.text
            journey.visible("arrived")
            client = stack.stack.contracts.service.client
            assert client.arrival_of(agreement["onchain_id"])[0] > 0
    finally:
        driver.remove_virtual_authenticator()
