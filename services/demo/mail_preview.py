"""The demo's e-mails as a candidate sees them: each .eml beside a .png of its HTML part
rendered at phone width (390 px) by headless Chromium when it is installed."""

from __future__ import annotations

import email
import email.policy
import shutil
import subprocess
import tempfile
from pathlib import Path

WIDTH, HEIGHT = 390, 1000


def chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def screenshot(browser: str, page: Path, png: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="offerseal-chromium-") as profile:
        done = subprocess.run(
            [
                browser,
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                f"--user-data-dir={profile}",
                f"--window-size={WIDTH},{HEIGHT}",
                f"--screenshot={png}",
                page.as_uri(),
            ],
            capture_output=True,
            timeout=60,
            check=False,
        )
    return done.returncode == 0 and png.exists()


def keep_mail(folder: Path, out: Path) -> tuple[int, int, str | None]:
    """Copy every .eml of `folder` into `out` (oldest first, numbered) with a .png beside each.
    Returns (messages, screenshots, why there are none)."""
    out = out.resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    browser = chromium()
    why = None if browser else "Chromium is not installed (apt-get install chromium)"
    emls = sorted(folder.glob("*.eml"), key=lambda p: p.stat().st_mtime)
    shots = 0
    for n, eml in enumerate(emls, 1):
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        stem = f"{n:02d}-{message['X-OfferSeal-Kind'] or eml.stem}"
        shutil.copyfile(eml, out / f"{stem}.eml")
        html_part = message.get_body(preferencelist=("html",))
        if browser is None or html_part is None:
            continue
        page = out / f".{stem}.html"
        page.write_text(str(html_part.get_content()), encoding="utf-8")
        try:
            if screenshot(browser, page, out / f"{stem}.png"):
                shots += 1
            else:
                why = "Chromium could not render some of them"
        except subprocess.TimeoutExpired:
            why = "Chromium timed out"
        finally:
            page.unlink(missing_ok=True)
    return len(emls), shots, why
