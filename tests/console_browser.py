"""The console's page tests' browser (test_console_page, test_console_alerts): the `desktop`
and `phone` fixtures (Chromium at a desktop's or a phone's width; a plugin of tests/conftest.py),
full-page screenshots of each step into test-artifacts/, and a wait for what a step shows."""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest


def _browser(tmp: Path, width: int, height: int, mobile: bool) -> Any:
    from tests.integration.test_verify_page import start_chromium

    driver = start_chromium(tmp, width, height, mobile=mobile, scale=1)
    driver.width = width
    return driver


@pytest.fixture
def desktop(tmp_path: Path) -> Iterator[Any]:
    driver = _browser(tmp_path / "profile", 1280, 900, False)
    yield driver
    driver.quit()


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    driver = _browser(tmp_path / "profile", 360, 780, True)
    yield driver
    driver.quit()


def screenshot(driver: Any, path: Path) -> None:
    """The whole page (beyond the viewport) at the driver's width, as a PNG at `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": driver.width, "height": height, "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))


def steps(artifacts: Path) -> Callable[[Any, str], AbstractContextManager[None]]:
    """`step(driver, name)`: a context whose page is saved as `artifacts/name.png` at its end,
    or as `name-FAILED.png` when it fails."""

    @contextmanager
    def step(driver: Any, name: str) -> Iterator[None]:
        try:
            yield
        except BaseException:
            screenshot(driver, artifacts / f"{name}-FAILED.png")
            raise
        screenshot(driver, artifacts / f"{name}.png")

    return step


def wait_until(driver: Any, condition: Callable[[Any], Any], timeout: float = 60.0) -> Any:
    """`condition(driver)` once it is true; an element the page re-rendered between finding and
    reading it (a live board replaces its rows) counts as "not yet", never as a failure."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(
        driver, timeout, ignored_exceptions=(StaleElementReferenceException,)
    ).until(condition)


def wait_visible(driver: Any, css: str, timeout: float = 60.0) -> Any:  # a busy CI machine
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait_until(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout)
