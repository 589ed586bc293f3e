"""The HR console in a real browser (Debian's headless Chromium through Selenium) against a
real stack on Anvil, at 1280 px in English and at 360 px in Chinese: an account made with the
`offerseal users add` command sets its password through the printed link, signs in, sees the
board with a red and a blue candidate (red first), filters it, opens a timeline, cancels an
offer through its confirmation page (on chain), sees the 30% cap refused as it types an offer,
and reads the weekly report; then sees a risk change appear on the board without a reload,
changes an offer's dates, and asks the contract to declare a signed candidate's breach (the
damages against the cap shown first; refused before the start date plus grace).

Screenshots of every step go to test-artifacts/console/ (a failing step keeps its own).
Outside CI the tests skip when Chromium or its driver is absent; under CI=true they fail.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.cli import cmd_users_add
from tests.conftest import ROOT, RunningStack, make_settings, start_stack
from tests.console_browser import steps, wait_until, wait_visible
from tests.integration.test_contracts_service import body, sign_through_link

pytestmark = [pytest.mark.chain]

ARTIFACTS = ROOT / "test-artifacts" / "console"
step = steps(ARTIFACTS)
_wait = wait_visible
PASSWORD = "seven horses eat blue hay"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[dict[str, Any]]:
    tmp: Path = tmp_path_factory.mktemp("console-page")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'c.db'}", anvil.url)
    stack: RunningStack = start_stack(settings)
    try:
        contracts = stack.stack.urls["contracts"] + "/v1/agreements"
        offers = {}
        for ref, changes in (
            ("cand-red", {"non_compete": True, "position": "Firmware Lead"}),
            ("cand-blue", {"position": "Test Engineer"}),
        ):
            made = requests.post(
                contracts,
                json=body(candidate_ref=ref, **changes),
                headers={**stack.hr, "Prefer": "wait=30"},
                timeout=60,
            )
            assert made.status_code == 201, made.text
            offers[ref] = made.json()
        assert offers["cand-red"]["risk"]["level"] == "red"
        web = stack.stack.urls["web"]
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            args = argparse.Namespace(
                email="lin.hr@acme.example", role="admin", tenant="acme", base_url=web
            )
            assert cmd_users_add(args, settings) == 0
        link = printed.getvalue().strip().splitlines()[-1]
        assert link.startswith(web + "/console/setup/")
        yield {"web": web, "link": link, "offers": offers, "stack": stack}
    finally:
        stack.stack.stop()


def _type(driver: Any, field: str, text: str) -> None:
    from selenium.webdriver.common.by import By

    element = driver.find_element(By.ID, field)
    element.clear()
    element.send_keys(text)


def _class_of(driver: Any, css: str) -> str:
    """The class of the element `css` finds, read in one step (as `_board_refs`)."""
    found: str = driver.execute_script(
        "return document.querySelector(arguments[0])?.className || ''", css
    )
    return found


def _board_refs(driver: Any) -> list[str]:
    """The board's candidate references, top to bottom, read in one step of the page (the live
    board may replace its rows between two WebDriver calls)."""
    refs: list[str] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#board-rows tr[data-agreement] th a'))"
        ".map((a) => a.innerText.trim())"
    )
    return refs


def _fits(driver: Any) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= driver.width, f"the page is {width}px wide at {driver.width}px"


def _sign_in(driver: Any, web: str, lang: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{web}/console?lang={lang}")
    _wait(driver, "#email")
    assert "/console/login" in driver.current_url
    _type(driver, "email", "lin.hr@acme.example")
    _type(driver, "password", PASSWORD)
    driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
    _wait(driver, "#board")


def test_desktop_journey_in_english(world: dict[str, Any], desktop: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver, web = desktop, world["web"]
    with step(driver, "desktop-1-set-password"):
        driver.get(world["link"] + "?lang=en")
        _wait(driver, "#password")
        assert "lin.hr@acme.example" in driver.find_element(By.TAG_NAME, "main").text
        _type(driver, "password", PASSWORD)
        _type(driver, "confirm", PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "main form button[type=submit]").click()
        _wait(driver, ".notification")
        assert "password is set" in driver.find_element(By.CSS_SELECTOR, ".notification").text

    with step(driver, "desktop-2-board"):
        _sign_in(driver, web, "en")
        assert _board_refs(driver) == ["cand-red", "cand-blue"]  # red first
        text, cells = driver.execute_script(  # one step: the live board may replace its rows
            "const red = document.querySelector('#board-rows tr.board__row--red');"
            "return [red.innerText, red.querySelectorAll('td.board__cp .cp').length]"
        )
        assert "Red" in text and "Firmware Lead" in text
        assert cells == 9
        # polled data replaces the rows only when they changed; the script fetched it
        _wait(driver, "#board[data-fingerprint]:not([data-fingerprint=''])")

    with step(driver, "desktop-3-filtered"):
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        before = driver.find_element(By.ID, "board")
        Select(driver.find_element(By.ID, "risk")).select_by_value("blue")
        driver.find_element(By.ID, "apply-filters").click()
        WebDriverWait(driver, 30).until(ec.staleness_of(before))  # the filtered page loaded
        _wait(driver, "#board")
        assert "risk=blue" in driver.current_url
        assert _board_refs(driver) == ["cand-blue"]

    red_id = world["offers"]["cand-red"]["id"]
    with step(driver, "desktop-4-timeline"):
        driver.get(f"{web}/console?q=cand-red")
        _wait(driver, "#board")
        driver.find_element(By.LINK_TEXT, "cand-red").click()
        _wait(driver, ".timeline")
        assert driver.current_url.endswith(f"/console/agreements/{red_id}")
        text = driver.find_element(By.TAG_NAME, "main").text
        assert "Recorded on chain: offer" in text
        assert "The nine checkpoints" in text

    with step(driver, "desktop-5-confirm-cancel"):
        driver.find_element(By.LINK_TEXT, "Cancel the offer").click()
        _wait(driver, "#confirm-action")
        assert "This cannot be undone." in driver.find_element(By.TAG_NAME, "main").text

    with step(driver, "desktop-6-cancelled"):
        driver.find_element(By.ID, "confirm-action").click()
        notice = _wait(driver, ".notification--success", timeout=60)
        assert "cancelled on chain" in notice.text
        state = requests.get(
            world["stack"].stack.urls["contracts"] + f"/v1/agreements/{red_id}",
            headers=world["stack"].hr,
            timeout=30,
        ).json()["state"]
        assert state == "cancelled"
        assert "Cancelled" in driver.find_element(By.CSS_SELECTOR, ".summary").text

    with step(driver, "desktop-7-offer-cap"):
        driver.get(f"{web}/console/offer")
        _wait(driver, "#monthly_salary")
        _type(driver, "monthly_salary", "30000")
        cap = driver.find_element(By.ID, "cap").text
        assert "9,000.00 CNY" in cap
        _type(driver, "liquidated_damages", "9000.01")
        error = _wait(driver, "#cap-error")
        assert "Above the cap of 9,000.00 CNY" in error.text
        driver.find_element(By.ID, "offer-submit").click()  # the form keeps it back
        assert driver.current_url.endswith("/console/offer")

    with step(driver, "desktop-8-report"):
        driver.get(f"{web}/console/report")
        _wait(driver, "#active-count")
        assert driver.find_element(By.ID, "active-count").text == "1"
        assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3


def test_the_api_refuses_what_the_form_refuses(world: dict[str, Any]) -> None:
    over = requests.post(
        world["stack"].stack.urls["contracts"] + "/v1/agreements",
        json=body(candidate_ref="cand-over", monthly_salary=3_000_000, liquidated_damages=900_001),
        headers=world["stack"].hr,
        timeout=60,
    )
    assert over.status_code == 422
    assert over.json()["errors"][0]["field"] == "liquidated_damages"


def test_phone_journey_in_chinese(world: dict[str, Any], phone: Any) -> None:
    from selenium.webdriver.common.by import By

    driver, web = phone, world["web"]
    with step(driver, "phone-1-board"):
        _sign_in(driver, web, "zh-CN")
        assert _board_refs(driver) == ["cand-blue"]  # the red one was cancelled
        assert "从录用到入职的候选人" in driver.find_element(By.TAG_NAME, "h1").text
        _fits(driver)  # the wide table scrolls inside its own region

    blue_id = world["offers"]["cand-blue"]["id"]
    with step(driver, "phone-2-timeline"):
        driver.get(f"{web}/console/agreements/{blue_id}")
        _wait(driver, ".timeline")
        assert "时间线" in driver.find_element(By.TAG_NAME, "main").text
        _fits(driver)

    with step(driver, "phone-3-report"):
        driver.get(f"{web}/console/report")
        _wait(driver, "#active-count")
        assert "周报" in driver.find_element(By.TAG_NAME, "h1").text
        _fits(driver)


def _signed_offer(world: dict[str, Any], ref: str) -> str:
    stack: RunningStack = world["stack"]
    made = requests.post(
        stack.stack.urls["contracts"] + "/v1/agreements",
        json=body(candidate_ref=ref, position="Signal Engineer"),
        headers={**stack.hr, "Prefer": "wait=30"},
        timeout=60,
    )
    assert made.status_code == 201, made.text
    agreement_id = str(made.json()["id"])
    signed = sign_through_link(stack, agreement_id)
    assert signed.status_code == 200, signed.text
    return agreement_id


def _state(world: dict[str, Any], agreement_id: str) -> dict[str, Any]:
    stack: RunningStack = world["stack"]
    answer = requests.get(
        stack.stack.urls["contracts"] + f"/v1/agreements/{agreement_id}",
        headers=stack.hr,
        timeout=30,
    )
    return dict(answer.json())


def test_live_board_and_timeline_actions_in_english(world: dict[str, Any], desktop: Any) -> None:
    from selenium.webdriver.common.by import By
    from sqlalchemy import update

    from offerseal.contracts.models import Agreement

    driver, web = desktop, world["web"]
    signed_id = _signed_offer(world, "cand-signed")
    blue_id = world["offers"]["cand-blue"]["id"]
    with step(driver, "desktop-9-live-risk"):
        _sign_in(driver, web, "en")
        _wait(driver, "#board[data-fingerprint]:not([data-fingerprint=''])")
        row = f"#board-rows tr[data-agreement='{blue_id}']"
        assert "board__row--blue" in _class_of(driver, row)
        driver.execute_script("window.stillTheSamePage = true")
        # the contracts service's risk tracking moves the candidate to red
        with world["stack"].db.transaction() as session:
            session.execute(
                update(Agreement)
                .where(Agreement.id == blue_id)
                .values(risk_level="red", risk_score=35, risk_reasons=["asked to delay"])
            )
        wait_until(driver, lambda d: "board__row--red" in _class_of(d, row))
        assert driver.execute_script("return window.stillTheSamePage") is True  # no reload
        assert _board_refs(driver)[0] == "cand-blue"  # red first
        assert driver.find_element(By.ID, "board-status").text  # said to screen readers

    with step(driver, "desktop-10-amend"):
        driver.get(f"{web}/console/agreements/{blue_id}")
        _wait(driver, ".timeline")
        driver.find_element(By.ID, "action-amend").click()
        _wait(driver, "#start_date")
        current = driver.find_element(By.ID, "start_date").get_attribute("value")
        later = (dt.date.fromisoformat(current) + dt.timedelta(days=7)).isoformat()
        driver.execute_script("document.getElementById('start_date').value = arguments[0]", later)
        _type(driver, "reason", "The team moved the start")

    with step(driver, "desktop-11-amended"):
        driver.find_element(By.ID, "confirm-action").click()
        notice = _wait(driver, ".notification--success", timeout=60)
        assert "new dates are on chain" in notice.text
        assert "The team moved the start" in driver.find_element(By.CSS_SELECTOR, ".timeline").text
        deadline = time.monotonic() + 30
        while _state(world, blue_id)["start_at"][:10] != later:
            assert time.monotonic() < deadline, _state(world, blue_id)
            time.sleep(0.3)

    with step(driver, "desktop-12-breach"):
        driver.get(f"{web}/console/agreements/{signed_id}")
        _wait(driver, ".timeline")
        form = driver.find_element(By.ID, "dossier").find_element(By.XPATH, "./ancestor::form")
        assert form.get_attribute("method") == "post"  # an admin may make the dossier
        assert form.get_attribute("action").endswith(f"/v1/agreements/{signed_id}/dossier")
        driver.find_element(By.ID, "action-breach").click()
        stake = _wait(driver, "#stake")
        assert "9,000.00 CNY" in stake.text and "30.0%" in stake.text
        assert "within the cap" in stake.text

    with step(driver, "desktop-13-breach-refused"):
        driver.find_element(By.ID, "confirm-action").click()
        _wait(driver, ".error-summary")
        assert _state(world, signed_id)["state"] == "committed"  # too early: nothing changed


def test_actions_at_360px_in_chinese(world: dict[str, Any], phone: Any) -> None:
    from selenium.webdriver.common.by import By

    driver, web = phone, world["web"]
    signed_id = _signed_offer(world, "cand-signed-zh")
    _sign_in(driver, web, "zh-CN")
    with step(driver, "phone-4-breach"):
        driver.get(f"{web}/console/agreements/{signed_id}/breach")
        stake = _wait(driver, "#stake")
        assert "宣告候选人违约" in driver.find_element(By.TAG_NAME, "h1").text
        assert "未超上限" in stake.text
        _fits(driver)

    with step(driver, "phone-5-amend"):
        driver.get(f"{web}/console/agreements/{signed_id}/amend")
        _wait(driver, "#start_date")
        assert "这是一项提议" in driver.find_element(By.TAG_NAME, "main").text
        _fits(driver)

    with step(driver, "phone-6-timeline-actions"):
        driver.get(f"{web}/console/agreements/{signed_id}")
        _wait(driver, ".timeline")
        assert "下载证据包" in driver.find_element(By.ID, "dossier").text
        _fits(driver)
