"""The console's settings page for HR alerts in the team's chat, in a real browser (Debian's
headless Chromium through Selenium) against a real stack and a local DingTalk/WeCom/Feishu
stand-in that checks each platform's signature: the console acts through notify's HTTP API
with the person's session. An HR person sets the three robots (a missing secret refused with
the GOV.UK error summary first), never sees a secret again, sends a test message that reaches
every robot signed, replaces a secret alone, removes a robot; the page at 360 px in Chinese;
a form posted without the CSRF token is refused.

Screenshots of every step go to test-artifacts/console-alerts/ (a failing step keeps its own).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared import users
from tests.chat_robots import DING_SECRET, FEISHU_SECRET, serve
from tests.conftest import ROOT, RunningStack, make_settings, start_stack
from tests.console_browser import steps, wait_visible

pytestmark = [pytest.mark.chain]

ARTIFACTS = ROOT / "test-artifacts" / "console-alerts"
step = steps(ARTIFACTS)
_wait = wait_visible
PASSWORD = "seven horses eat blue hay"
EMAIL = "wang.hr@acme.example"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("console-alerts")
    with serve() as robots:
        settings = make_settings(
            tmp, f"sqlite:///{tmp / 'a.db'}", anvil.url, chat_robot_hosts=(robots.netloc,)
        )
        stack: RunningStack = start_stack(settings)
        try:
            _, token = users.add_user(stack.db, EMAIL, "hr", "acme", "test")
            users.set_password(stack.db, token, PASSWORD)
            yield {"web": stack.stack.urls["web"], "stack": stack, "robots": robots}
        finally:
            stack.stack.stop()


def _type(driver: Any, field: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(text)


def _sign_in(driver: Any, web: str, lang: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{web}/console/alerts?lang={lang}")
    _wait(driver, "#email")
    _type(driver, "email", EMAIL)
    _type(driver, "password", PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    _wait(driver, "#alerts-form")  # back where the person was going


def _fits(driver: Any) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= driver.width, f"the page is {width}px wide at {driver.width}px"


def _labelled(driver: Any) -> None:
    """Every field has a label a screen reader announces (label[for] or a fieldset legend)."""
    from selenium.webdriver.common.by import By

    for field in driver.find_elements(By.CSS_SELECTOR, "#alerts-form input:not([type=hidden])"):
        ident = field.get_attribute("id")
        assert driver.find_elements(By.CSS_SELECTOR, f"label[for='{ident}']"), ident


def test_hr_sets_the_robots_tests_them_and_never_sees_a_secret(
    world: dict[str, Any], desktop: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver, web, robots = desktop, world["web"], world["robots"]
    urls = robots.urls()
    with step(driver, "en-1-empty"):
        _sign_in(driver, web, "en")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Alerts in your team's chat"
        nav = driver.find_element(By.CSS_SELECTOR, "nav a[aria-current=page]")
        assert nav.get_attribute("href").endswith("/console/alerts")
        assert driver.find_element(By.ID, "dingtalk-status").text == "Not set"
        assert driver.find_element(By.ID, "send-test").get_attribute("disabled")
        _labelled(driver)

    with step(driver, "en-2-missing-secret"):
        _type(driver, "dingtalk_url", urls["dingtalk"])
        driver.find_element(By.ID, "alerts-save").click()
        summary = _wait(driver, ".error-summary")
        assert "Enter the DingTalk robot's “加签” secret" in summary.text
        # the summary takes the focus (a screen reader reads it first) and links to the field
        focused = driver.switch_to.active_element
        assert focused.get_attribute("class") == "error-summary"
        link = summary.find_element(By.CSS_SELECTOR, "a")
        assert link.get_attribute("href").endswith("#dingtalk_secret")
        secret = driver.find_element(By.ID, "dingtalk_secret")
        assert "dingtalk_secret-error" in secret.get_attribute("aria-describedby")
        assert driver.find_element(By.ID, "dingtalk_url").get_attribute("value") == urls["dingtalk"]

    with step(driver, "en-3-saved"):
        # by keyboard: the secret typed, the form sent with Enter
        _type(driver, "dingtalk_secret", DING_SECRET)
        _type(driver, "wecom_url", urls["wecom"])
        _type(driver, "feishu_url", urls["feishu"])
        _type(driver, "feishu_secret", FEISHU_SECRET)
        driver.find_element(By.ID, "language-en").send_keys(Keys.SPACE)
        driver.find_element(By.ID, "feishu_secret").send_keys(Keys.ENTER)
        _wait(driver, "#alerts-saved")
        assert "The chat alert settings are saved." in driver.page_source
        status = driver.find_element(By.ID, "dingtalk-status").text
        assert status.startswith("Set:") and "signing secret set" in status
        assert "access_token=" in status and urls["dingtalk"] not in status  # masked
        for secret in (DING_SECRET, FEISHU_SECRET):
            assert secret not in driver.page_source
        assert driver.find_element(By.ID, "dingtalk_secret").get_attribute("value") == ""
        assert driver.find_element(By.ID, "language-en").is_selected()

    with step(driver, "en-4-tested"):
        driver.find_element(By.ID, "send-test").click()
        _wait(driver, "#alerts-tested")
        for platform, name in (("dingtalk", "DingTalk"), ("wecom", "WeCom"), ("feishu", "Feishu")):
            text = driver.find_element(By.ID, f"tested-{platform}").text
            assert text == f"{name}: delivered", text
            assert any("Test message" in t for t in robots.texts(platform))
        assert robots.bad == {"dingtalk": 0, "wecom": 0, "feishu": 0}  # every post signed

    with step(driver, "en-5-secret-replaced-wecom-removed"):
        # a wrong secret alone replaces the stored one (the URL kept): the platform refuses it
        _type(driver, "dingtalk_secret", "SECnot-the-robots-secret")
        driver.find_element(By.ID, "wecom_remove").click()
        driver.find_element(By.ID, "alerts-save").click()
        _wait(driver, "#alerts-saved")
        assert driver.find_element(By.ID, "wecom-status").text == "Not set"
        assert driver.find_element(By.ID, "dingtalk-status").text.startswith("Set:")
        driver.find_element(By.ID, "send-test").click()
        _wait(driver, "#alerts-tested")
        refused = driver.find_element(By.ID, "tested-dingtalk").text
        assert refused.startswith("DingTalk: refused by the platform") and "310000" in refused
        assert not driver.find_elements(By.ID, "tested-wecom")
        _type(driver, "dingtalk_secret", DING_SECRET)  # put right again
        driver.find_element(By.ID, "alerts-save").click()
        _wait(driver, "#alerts-saved")

    # The form's POST without the CSRF token is refused, the robots unchanged.
    cookies = {c["name"]: c["value"] for c in driver.get_cookies()}
    r = requests.post(
        f"{web}/console/alerts",
        data={"wecom_url": urls["wecom"], "language": "zh-CN"},
        cookies=cookies,
        timeout=30,
        allow_redirects=False,
    )
    assert r.status_code == 403
    driver.get(f"{web}/console/alerts")
    _wait(driver, "#alerts-form")
    assert driver.find_element(By.ID, "wecom-status").text == "Not set"


def test_the_page_at_360px_in_chinese(world: dict[str, Any], phone: Any) -> None:
    from selenium.webdriver.common.by import By

    driver, web = phone, world["web"]
    with step(driver, "zh-CN-360-alerts"):
        _sign_in(driver, web, "zh-CN")
        assert driver.find_element(By.TAG_NAME, "h1").text == "群机器人提醒"
        assert "钉钉" in driver.find_element(By.ID, "robot-dingtalk").text
        assert driver.find_element(By.ID, "send-test").text == "发送测试消息"
        _labelled(driver)
        _fits(driver)
    with step(driver, "zh-CN-360-error"):
        _type(driver, "feishu_url", "https://example.com/hook")
        driver.find_element(By.ID, "alerts-save").click()
        summary = _wait(driver, ".error-summary")
        assert "出现问题" in summary.text and "飞书" in summary.text
        _fits(driver)
