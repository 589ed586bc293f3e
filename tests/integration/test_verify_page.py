"""The verify page in a real browser (Debian's headless Chromium through Selenium), at phone
width, in zh-CN and en: a real stack anchors a document on Anvil, then the page checks the file,
its proof bundle and the Anvil RPC endpoint with nothing but the browser; a copy with one byte
changed fails; the saved self-contained verifier does the same opened from disk (file://). The
root is also stamped by a real local OpenSSL TSA: the page checks the RFC 3161 token against the
TSA root the user gives, and fails it against another CA's root.

Screenshots of every step go to test-artifacts/verify/ (a failing step keeps its own). Outside
CI the tests skip when Chromium or its driver is absent; under CI=true they fail.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import requests

from offerseal.shared.dev_tsa import DevTSA, ensure_authority
from tests.conftest import (
    IN_CI,
    ROOT,
    free_port,
    make_settings,
    start_stack,
    upload,
    wait_for_proof,
)
from tests.dossiers import anchored_dossier, zip_of
from tests.integration.test_timestamps import stamped_proof

pytestmark = [pytest.mark.chain]

ARTIFACTS = ROOT / "test-artifacts" / "verify"
WIDTH = 360
CHECKS = [
    "format",
    "document_hash",
    "document_sm3",
    "receipt_signature",
    "leaf",
    "merkle_path",
    "chain_id",
    "root_anchored",
    "anchor_transaction",
    "block_timestamp",
    "rfc3161_timestamp",
]
WORDS = {
    "en": {"pass": "PASS", "fail": "FAIL", "valid": "Valid", "invalid": "Not valid"},
    "zh-CN": {"pass": "通过", "fail": "未通过", "valid": "有效", "invalid": "无效"},
}
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
)


def _browser_paths() -> tuple[str, str]:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = (
        "Chromium and chromium-driver are not installed "
        "(apt-get install chromium chromium-driver fonts-wqy-microhei)"
    )
    if IN_CI:
        pytest.fail(f"{message} (CI=true: browser tests must run, not skip)")
    pytest.skip(message)


def start_chromium(
    profile: Path, width: int, height: int, *, mobile: bool = True, scale: int = 2
) -> Any:
    """Debian's headless Chromium through Selenium, emulating a screen `width` CSS pixels wide
    (a phone when `mobile`), whatever the headless window's frame takes."""
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_argument(f"--window-size={width},{height}")
    # chromedriver on a port from the harness (Selenium's own pick is a released port 0)
    service = Service(executable_path=driver_path, port=free_port())
    driver = webdriver.Chrome(options=options, service=service)
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": scale, "mobile": mobile},
    )
    return driver


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"), WIDTH, 780)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory, anvil: Any) -> Iterator[dict[str, Any]]:
    """A stack that anchored one document: its bytes, a one-byte-changed copy and the proof
    bundle, as files a user would pick."""
    tmp = tmp_path_factory.mktemp("verify-page")
    tsa = DevTSA(tmp / "tsa").start()
    # A batch window wide enough that the document shares its tree with others: a real path.
    settings = make_settings(
        tmp,
        f"sqlite:///{tmp / 'v.db'}",
        anvil.url,
        batch_interval=3.0,
        tsa_urls=(tsa.url,),
        tsa_ca_file=tsa.authority.ca_cert,
    )
    stack = start_stack(settings)
    try:
        content, proof = _anchored_among_others(stack)
        files = tmp / "files"
        files.mkdir()
        (files / "stamped-copy.pdf").write_bytes(content)
        tampered = bytearray(content)
        tampered[9] ^= 0x01
        (files / "stamped-copy-altered.pdf").write_bytes(bytes(tampered))
        (files / "proof.json").write_text(json.dumps(proof, indent=2))
        key = requests.get(stack.url("/v1/keys"), timeout=10).json()["keys"][0]["public_key"]
        # An agreement dossier whose manifest and evidence file this stack anchored and stamped.
        entries = anchored_dossier(stack, proof_of=stamped_proof)
        (files / "dossier.zip").write_bytes(zip_of(list(entries.items())))
        altered = dict(entries)
        readme = bytearray(altered["README.txt"])
        readme[3] ^= 0x01
        altered["README.txt"] = bytes(readme)
        (files / "dossier-altered.zip").write_bytes(zip_of(list(altered.items())))
        yield {
            "web": stack.stack.urls["web"],
            "rpc": stack.rpc_url,
            "document": files / "stamped-copy.pdf",
            "altered": files / "stamped-copy-altered.pdf",
            "proof": files / "proof.json",
            "key": key,
            "dir": files,
            "tsa_root": tsa.authority.ca_cert,
            "other_root": ensure_authority(tmp / "other-tsa", name="Another TSA").ca_cert,
            "dossier": files / "dossier.zip",
            "dossier_altered": files / "dossier-altered.zip",
        }
    finally:
        stack.stack.stop()
        tsa.stop()


def _anchored_among_others(stack: Any, rounds: int = 5) -> tuple[bytes, dict[str, Any]]:
    """A document anchored in a tree of several leaves, with its RFC 3161 stamp: the document
    and three others are uploaded at once, and again with a new document should a busy machine
    have let the batch close on it alone (the condition, not the timing, is what counts)."""
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(rounds):
        content = b"%PDF-1.7 resignation accepted, stamped copy " + bytes(range(256))
        content += b"" if attempt == 0 else f" #{attempt}".encode()
        with ThreadPoolExecutor(4) as pool:
            created = pool.submit(upload, stack, content, kind="resignation_acceptance")
            others = [
                pool.submit(upload, stack, f"%PDF another {attempt}.{n}".encode()) for n in range(3)
            ]
            assert created.result().status_code == 201, created.result().text
            assert all(other.result().status_code == 201 for other in others)
        document = created.result().json()["id"]
        proof = wait_for_proof(stack, document)
        deadline = time.monotonic() + 60
        while not proof["timestamps"] and time.monotonic() < deadline:
            time.sleep(0.1)
            proof = wait_for_proof(stack, document)
        assert proof["witnesses"] == ["ethereum", "rfc3161"], "the TSA should have stamped"
        if len(proof["merkle"]["proof"]) >= 2:
            return content, proof
    raise AssertionError(f"the document never shared its tree in {rounds} rounds")


def _screenshot(driver: Any, name: str) -> Path:
    """The whole page at phone width, as a PNG under test-artifacts/verify/."""
    import base64

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WIDTH, "height": height, "scale": 1},
        },
    )
    path = ARTIFACTS / f"{name}.png"
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


@contextmanager
def step(driver: Any, name: str) -> Iterator[None]:
    """One step of the journey: its screenshot afterwards, or `<name>-FAILED` when it fails."""
    try:
        yield
    except BaseException:
        _screenshot(driver, f"{name}-FAILED")
        raise
    _screenshot(driver, name)


def _fits_phone(driver: Any) -> None:
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page is {width}px wide: it scrolls sideways at {WIDTH}px"


def _fill(
    driver: Any, evidence: dict[str, Any], document: Path, key: bool, tsa_root: str = "tsa_root"
) -> None:
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "document").send_keys(str(document))
    driver.find_element(By.ID, "proof").send_keys(str(evidence["proof"]))
    rpc = driver.find_element(By.ID, "rpc")
    rpc.clear()
    rpc.send_keys(evidence["rpc"])
    field = driver.find_element(By.ID, "key")
    field.clear()
    if key:
        field.send_keys(evidence["key"])
    driver.find_element(By.ID, "tsa").send_keys(str(evidence[tsa_root]))


def _submit_with_keyboard(driver: Any) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    driver.find_element(By.CSS_SELECTOR, "#verify-form button[type=submit]").send_keys(Keys.ENTER)


def _result(driver: Any, timeout: float = 60.0) -> dict[str, Any]:
    """The verdict and every check's status and text, once the page has shown them."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(driver, timeout).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "#results #verdict[data-valid]"))
    )
    verdict = driver.find_element(By.ID, "verdict")
    checks = {
        item.get_attribute("data-check"): {
            "status": item.get_attribute("data-status"),
            "tag": item.find_element(By.CSS_SELECTOR, ".tag").text,
            "text": item.text,
        }
        for item in driver.find_elements(By.CSS_SELECTOR, "#checks > li")
    }
    return {
        "valid": verdict.get_attribute("data-valid") == "true",
        "verdict": verdict.text,
        "checks": checks,
    }


def _reset(driver: Any) -> None:
    """Forget the previous run's result so that the next wait sees the new one."""
    driver.execute_script(
        "const v = document.getElementById('verdict'); if (v) delete v.dataset.valid;"
        "document.getElementById('results').hidden = true;"
    )


def _verify_both(driver: Any, evidence: dict[str, Any], lang: str, prefix: str) -> None:
    words = WORDS[lang]
    with step(driver, f"{prefix}-2-valid"):
        _fill(driver, evidence, evidence["document"], key=True)
        _submit_with_keyboard(driver)
        result = _result(driver)
        assert list(result["checks"]) == CHECKS
        assert {c["status"] for c in result["checks"].values()} == {"pass"}, result
        assert all(c["tag"] == words["pass"] for c in result["checks"].values())
        assert result["valid"] and result["verdict"].startswith(words["valid"])
        assert evidence["key"] not in result["checks"]["receipt_signature"]["text"]
        stamp = result["checks"]["rfc3161_timestamp"]["text"]
        assert "OfferSeal development TSA" in stamp, stamp
        _fits_phone(driver)

    _reset(driver)
    with step(driver, f"{prefix}-3-altered"):
        _fill(driver, evidence, evidence["altered"], key=True)
        _submit_with_keyboard(driver)
        result = _result(driver)
        assert result["checks"]["document_hash"]["status"] == "fail", result
        assert result["checks"]["document_hash"]["tag"] == words["fail"]
        assert result["checks"]["document_sm3"]["status"] == "fail", result
        others = {
            n: c["status"]
            for n, c in result["checks"].items()
            if n not in ("document_hash", "document_sm3")
        }
        assert set(others.values()) == {"pass"}, others  # only the file differs
        assert not result["valid"] and result["verdict"].startswith(words["invalid"])
        _fits_phone(driver)


def _requests_made(driver: Any) -> list[tuple[str, str]]:
    return [
        (str(entry["initiatorType"]), str(entry["name"]))
        for entry in driver.execute_script(
            "return performance.getEntriesByType('resource')"
            ".map(e => ({initiatorType: e.initiatorType, name: e.name}))"
        )
    ]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_page_verifies_a_real_proof_in_the_browser(
    browser: Any, evidence: dict[str, Any], lang: str
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    prefix = f"page-{lang}"
    with step(driver, f"{prefix}-1-empty-form-errors"):
        driver.get(f"{evidence['web']}/verify?lang={lang}")
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        _fits_phone(driver)
        _submit_with_keyboard(driver)
        summary = driver.find_element(By.ID, "error-summary")
        assert summary.is_displayed()
        links = summary.find_elements(By.CSS_SELECTOR, "a")
        assert [a.get_attribute("href").rsplit("#", 1)[1] for a in links] == [
            "document",
            "proof",
            "rpc",
        ]
        assert driver.switch_to.active_element == summary  # announced and focused first
        assert driver.find_element(By.ID, "document-error").is_displayed()
    _verify_both(driver, evidence, lang, prefix)

    # Neither file left the browser: the only calls after the page's own assets went to the RPC.
    calls = [name for kind, name in _requests_made(driver) if kind in {"fetch", "xmlhttprequest"}]
    assert calls and {name.rstrip("/") for name in calls} == {evidence["rpc"].rstrip("/")}


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_saved_verifier_works_from_disk(
    browser: Any, evidence: dict[str, Any], lang: str
) -> None:
    from selenium.webdriver.common.by import By

    driver = browser
    driver.get(f"{evidence['web']}/verify?lang={lang}")
    link = driver.find_element(By.ID, "save-verifier")
    assert link.get_attribute("download") == "offerseal-verifier.html"
    saved = requests.get(link.get_attribute("href"), timeout=10)
    assert saved.status_code == 200
    assert saved.headers["Content-Disposition"].startswith("attachment")
    html = saved.text
    assert "<script src" not in html and 'rel="stylesheet"' not in html  # one file, nothing else
    path = evidence["dir"] / f"offerseal-verifier-{lang}.html"
    path.write_text(html, encoding="utf-8")

    prefix = f"saved-{lang}"
    with step(driver, f"{prefix}-1-opened-from-disk"):
        driver.get(path.as_uri())
        assert driver.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang
        assert driver.find_element(By.ID, "verify-form").is_displayed()
        assert not driver.find_elements(By.ID, "save-verifier")
        _fits_phone(driver)
    _verify_both(driver, evidence, lang, prefix)
    assert all(name.startswith(("file:", evidence["rpc"])) for _, name in _requests_made(driver))


def test_the_saved_verifier_switches_language_by_itself(
    browser: Any, evidence: dict[str, Any]
) -> None:
    from selenium.webdriver.common.by import By

    path = evidence["dir"] / "offerseal-verifier-switch.html"
    path.write_text(
        requests.get(f"{evidence['web']}/verify/verifier.html?lang=en", timeout=10).text,
        encoding="utf-8",
    )
    browser.get(path.as_uri() + "?lang=zh-CN")
    time.sleep(0.2)
    assert browser.find_element(By.TAG_NAME, "html").get_attribute("lang") == "zh-CN"
    assert browser.find_element(By.TAG_NAME, "h1").text == "核验文件及其证明"


def test_the_page_fails_a_stamp_against_another_tsa_root(
    browser: Any, evidence: dict[str, Any]
) -> None:
    driver = browser
    with step(driver, "page-en-4-other-tsa-root"):
        driver.get(f"{evidence['web']}/verify?lang=en")
        _fill(driver, evidence, evidence["document"], key=True, tsa_root="other_root")
        _submit_with_keyboard(driver)
        result = _result(driver)
        failed = {n for n, c in result["checks"].items() if c["status"] == "fail"}
        assert failed == {"rfc3161_timestamp"}, result
        assert not result["valid"]
        _fits_phone(driver)


DOSSIER_CHECKS = ["zip", "manifest", "files", "manifest_anchored", "file_proof", "cover"]


def _fill_dossier(driver: Any, evidence: dict[str, Any], dossier: Path) -> None:
    """The dossier goes where the document goes, and no proof bundle: it carries its own."""
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "document").send_keys(str(dossier))
    rpc = driver.find_element(By.ID, "rpc")
    rpc.clear()
    rpc.send_keys(evidence["rpc"])
    field = driver.find_element(By.ID, "key")
    field.clear()
    field.send_keys(evidence["key"])
    driver.find_element(By.ID, "tsa").send_keys(str(evidence["tsa_root"]))


def _verify_dossiers(driver: Any, evidence: dict[str, Any], lang: str, prefix: str) -> None:
    from selenium.webdriver.common.by import By

    words = WORDS[lang]
    with step(driver, f"{prefix}-dossier-valid"):
        _fill_dossier(driver, evidence, evidence["dossier"])
        _submit_with_keyboard(driver)
        result = _result(driver)
        assert list(result["checks"]) == DOSSIER_CHECKS, result
        assert {c["status"] for c in result["checks"].values()} == {"pass"}, result
        assert all(c["tag"] == words["pass"] for c in result["checks"].values())
        assert result["valid"] and result["verdict"].startswith(words["valid"])
        # Each proof bundle's own checks are listed under the check that sums them up.
        nested = driver.find_elements(
            By.CSS_SELECTOR, "#checks > li[data-check=manifest_anchored] ol > li"
        )
        assert [n.get_attribute("data-check") for n in nested] == CHECKS
        assert {n.get_attribute("data-status") for n in nested} == {"pass"}
        folded = driver.find_element(
            By.CSS_SELECTOR, "#checks > li[data-check=manifest_anchored] details"
        )
        assert folded.get_attribute("open") is None  # all passed: folded
        _fits_phone(driver)

    _reset(driver)
    with step(driver, f"{prefix}-dossier-altered"):
        _fill_dossier(driver, evidence, evidence["dossier_altered"])
        _submit_with_keyboard(driver)
        result = _result(driver)
        failed = {n for n, c in result["checks"].items() if c["status"] == "fail"}
        assert failed == {"files"}, result
        assert "README.txt" in result["checks"]["files"]["text"]
        assert result["checks"]["files"]["tag"] == words["fail"]
        assert not result["valid"] and result["verdict"].startswith(words["invalid"])
        _fits_phone(driver)


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_page_verifies_an_agreement_dossier(
    browser: Any, evidence: dict[str, Any], lang: str
) -> None:
    browser.get(f"{evidence['web']}/verify?lang={lang}")
    _verify_dossiers(browser, evidence, lang, f"page-{lang}")
    calls = [name for kind, name in _requests_made(browser) if kind in {"fetch", "xmlhttprequest"}]
    assert calls and {name.rstrip("/") for name in calls} == {evidence["rpc"].rstrip("/")}


def test_the_saved_verifier_verifies_an_agreement_dossier_from_disk(
    browser: Any, evidence: dict[str, Any]
) -> None:
    path = evidence["dir"] / "offerseal-verifier-dossier.html"
    path.write_text(
        requests.get(f"{evidence['web']}/verify/verifier.html?lang=en", timeout=10).text,
        encoding="utf-8",
    )
    browser.get(path.as_uri())
    _verify_dossiers(browser, evidence, "en", "saved-en")
    assert all(name.startswith(("file:", evidence["rpc"])) for _, name in _requests_made(browser))


def test_the_page_refuses_what_the_cli_refuses_in_a_dossiers_zip(
    browser: Any, evidence: dict[str, Any]
) -> None:
    """The page checks a dossier's names and layout as `offerseal-verify dossier` does: two
    names that are one file once extracted (Unicode form, case) and entries that share stored
    bytes (a zip bomb's kernel) fail the zip check, before anything is read."""
    import zipfile

    from offerseal_verify.dossier import verify_dossier
    from tests.dossiers import overlapping_zip, raw_entry

    with zipfile.ZipFile(evidence["dossier"]) as archive:
        entries = [(name, archive.read(name)) for name in archive.namelist()]
    cases = {
        "nfc-nfd": zip_of(
            [*entries, ("agreement/caf\u00e9.txt", b"1"), ("agreement/cafe\u0301.txt", b"2")]
        ),
        "case": zip_of([*entries, ("readme.TXT", b"2")]),
        "overlap": overlapping_zip([raw_entry(n, c) for n, c in entries], "agreement/wrapper.bin"),
    }
    for name, data in cases.items():
        # the CLI's verdict on the same bytes
        cli = verify_dossier(data, trusted_keys=None, chain=None)
        assert [c.name for c in cli.checks if c.ok is False] == ["zip"], (name, cli)
        path = evidence["dir"] / f"dossier-{name}.zip"
        path.write_bytes(data)
        browser.get(f"{evidence['web']}/verify?lang=en")
        with step(browser, f"page-en-dossier-{name}"):
            _fill_dossier(browser, evidence, path)
            _submit_with_keyboard(browser)
            result = _result(browser)
            assert list(result["checks"]) == ["zip"], (name, result)
            assert result["checks"]["zip"]["status"] == "fail" and not result["valid"]
            text = result["checks"]["zip"]["text"]
            assert ("overlaps" if name == "overlap" else "twice") in text, (name, text)
