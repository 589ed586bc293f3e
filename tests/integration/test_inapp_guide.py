"""The portal in the in-app browsers of WeChat, WeCom, DingTalk, Feishu, QQ, Alipay and Weibo:
before the candidate starts, it says what works there (reading, check-ins), how to open the page
in the phone's browser (a picture of the menu), the link to copy and a QR code for another
device; a browser without WebAuthn gets the same in words. The web app alone (no chain), served
on 127.0.0.1 and opened in headless Chromium with each app's user agent at 360 px, zh-CN and en;
screenshots in docs/ (WeChat) and test-artifacts/inapp/."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from werkzeug.serving import make_server

from offerseal.shared.db import Database
from offerseal.web.app import create_app
from offerseal.web.inapp import detect
from tests.conftest import ROOT, make_settings
from tests.integration.test_verify_page import WIDTH, start_chromium

CHROME = "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
WV = CHROME.replace("Pixel 7)", "Pixel 7; wv)") + "Version/4.0 Chrome/111.0.5563.116 Mobile "
AGENTS = {
    "wechat": WV + "Safari/537.36 XWEB/1110005 MMWEBSDK/20230805 MicroMessenger/8.0.42.2460"
    "(0x28002A35) WeChat/arm64 Weixin NetType/WIFI Language/zh_CN ABI/arm64",
    "wecom": WV + "Safari/537.36 MicroMessenger/7.0.1 wxwork/4.1.10 ColorScheme/Light",
    "dingtalk": WV + "Safari/537.36 AliApp(DingTalk/7.0.40) com.alibaba.android.rimet/35473043 "
    "Channel/227200 language/zh-CN",
    "feishu": WV + "Safari/537.36 Lark/6.11.7 LarkLocale/zh_CN ChannelName/Feishu",
    "qq": WV + "Safari/537.36 V1_AND_SQ_8.9.78_4548_YYB_D QQ/8.9.78.12275 NetType/WIFI",
    "alipay": WV + "Safari/537.36 AlipayDefined(nt:WIFI) AliApp(AP/10.5.36.8000) "
    "AlipayClient/10.5.36.8000 Language/zh-Hans",
    "weibo": WV + "Safari/537.36 Weibo (HUAWEI-ELS-AN00__weibo__13.9.2__android__android10)",
}
BROWSERS = {
    "chrome": CHROME + "Chrome/120.0.0.0 Mobile Safari/537.36",
    "qq browser": WV + "Safari/537.36 MQQBrowser/13.6 Mobile",
    "safari": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
}
ARTIFACTS = ROOT / "test-artifacts" / "inapp"
NAMES = {"zh-CN": "微信", "en": "WeChat"}


@pytest.mark.parametrize("app", sorted(AGENTS))
def test_each_in_app_browser_is_recognised(app: str) -> None:
    assert detect(AGENTS[app]) == app


@pytest.mark.parametrize("browser", sorted(BROWSERS))
def test_real_browsers_are_not_taken_for_in_app_ones(browser: str) -> None:
    assert detect(BROWSERS[browser]) is None


@pytest.fixture(scope="module")
def web(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("inapp")
    settings = make_settings(tmp, f"sqlite:///{tmp / 'web.db'}", "http://127.0.0.1:1")
    db = Database(settings.effective_database_url)
    db.migrate()
    app = create_app(settings, db)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()


def page(web: str, agent: str, language: str) -> str:
    import requests

    answer = requests.get(
        f"{web}/portal/{uuid.uuid4()}?lang={language}&token=t0k3n",
        headers={"User-Agent": agent, "Accept": "text/html"},
        timeout=10,
    )
    assert answer.status_code == 200
    assert "User-Agent" in answer.headers["Vary"]
    return answer.text


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_the_portal_shows_the_guide_in_wechat_only(web: str, language: str) -> None:
    html = page(web, AGENTS["wechat"], language)
    assert 'id="inapp-guide"' in html and NAMES[language] in html
    assert "<svg" in html and 'class="segno"' in html  # the QR code, inline
    assert "token=t0k3n" in html  # the link to copy is this page's, with its token
    plain = page(web, BROWSERS["chrome"], language)
    assert 'id="inapp-guide"' not in plain
    assert '<section id="inapp-ways" aria-labelledby="inapp-ways-title" hidden>' in plain


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    driver = start_chromium(tmp_path_factory.mktemp("chromium-inapp"), WIDTH, 780)
    yield driver
    driver.quit()


def shot(driver: Any, path: Path, until: str = "") -> None:
    """The page from the top (down to the bottom of element `until` when given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script(
        "const e = arguments[0] && document.getElementById(arguments[0]);"
        "return e ? Math.ceil(e.getBoundingClientRect().bottom + window.scrollY + 16)"
        " : document.documentElement.scrollHeight;",
        until,
    )
    data = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": WIDTH, "height": min(height, 2400), "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(data["data"]))


def visible(driver: Any, element_id: str) -> bool:
    return bool(
        driver.execute_script(
            "const e = document.getElementById(arguments[0]);"
            "return !!e && !e.hidden && e.getBoundingClientRect().height > 0;",
            element_id,
        )
    )


def fits(driver: Any) -> bool:
    return bool(
        driver.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth + 1;"
        )
    )


@pytest.mark.parametrize("language", ["zh-CN", "en"])
def test_in_each_app_the_guide_shows_at_phone_width(web: str, chromium: Any, language: str) -> None:
    for app, agent in sorted(AGENTS.items()):
        chromium.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": agent})
        chromium.get(f"{web}/portal/{uuid.uuid4()}?lang={language}&token=t0k3n")
        assert visible(chromium, "inapp-guide"), app
        assert visible(chromium, "inapp-ways") and visible(chromium, "inapp-qr"), app
        assert visible(chromium, "inapp-copy"), app  # the script ran
        assert fits(chromium), f"{app} at {WIDTH}px scrolls sideways"
        shot(chromium, ARTIFACTS / language / f"{app}.png")
        if app == "wechat":
            shot(chromium, ROOT / "docs" / f"portal-wechat-{language}.png", until="inapp-ways")
    chromium.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": BROWSERS["chrome"]})


def test_without_webauthn_the_page_says_so_in_words(web: str, chromium: Any) -> None:
    chromium.execute_cdp_cmd("Emulation.setUserAgentOverride", {"userAgent": BROWSERS["chrome"]})
    chromium.get(f"{web}/portal/{uuid.uuid4()}?lang=en&token=t0k3n")
    assert not visible(chromium, "no-webauthn") and not visible(chromium, "inapp-ways")
    script = chromium.execute_cdp_cmd(
        "Page.addScriptToEvaluateOnNewDocument",
        {"source": "delete window.PublicKeyCredential;"},
    )
    try:
        chromium.get(f"{web}/portal/{uuid.uuid4()}?lang=en&token=t0k3n")
        assert visible(chromium, "no-webauthn") and visible(chromium, "inapp-ways")
        assert "cannot create passkeys" in chromium.page_source
        shot(chromium, ARTIFACTS / "en" / "no-webauthn.png")
    finally:
        chromium.execute_cdp_cmd(
            "Page.removeScriptToEvaluateOnNewDocument", {"identifier": script["identifier"]}
        )
