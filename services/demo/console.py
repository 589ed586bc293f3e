"""The demo's last look: HR's console. A person is made as `offerseal users add` makes them,
sets a password through the one-time link, signs in, and reads the board's data (the same rows
the page shows) and the weekly report's CSV."""

from __future__ import annotations

import re
from typing import Any

import requests

from ..shared.users import add_user
from .common import say

EMAIL = "demo.hr@acme.example"
PASSWORD = "demo passphrase, not for production"


def console_story(stack: Any, hr: dict[str, str]) -> bool:
    web = stack.urls["web"]
    say(f"HR's console at {web}/console: the board, each candidate's timeline, the weekly report")
    _, token = add_user(stack.db, EMAIL, "hr", "acme", by="demo")
    browser = requests.Session()

    def csrf(html: str) -> str:
        found = re.search(r'name="csrf_token" value="([^"]+)"', html)
        return found.group(1) if found else ""

    setup = browser.get(f"{web}/console/setup/{token}", timeout=30)
    done = browser.post(
        f"{web}/console/setup/{token}",
        data={"csrf_token": csrf(setup.text), "password": PASSWORD, "confirm": PASSWORD},
        timeout=30,
    )
    browser.post(
        f"{web}/console/login",
        data={"csrf_token": csrf(done.text), "email": EMAIL, "password": PASSWORD},
        timeout=30,
    )
    board = browser.get(f"{web}/console/board.json", timeout=30)
    if board.status_code != 200:
        print(f"  the board answered {board.status_code}")
        return False
    rows = board.json()["rows"]
    print(f"  signed in as {EMAIL} (hr, tenant acme): {len(rows)} candidate(s) on the board")
    for row in rows:
        marks = " ".join(f"{c['checkpoint']}={c['status']}" for c in row["checkpoints"])
        print(f"  {row['candidate_ref']}: {row['risk']['level']} ({row['risk']['score']}) {marks}")
    listed = requests.get(stack.urls["contracts"] + "/v1/agreements", headers=hr, timeout=30)
    for agreement in listed.json().get("items", [])[:1]:
        page = browser.get(f"{web}/console/agreements/{agreement['id']}", timeout=30)
        events = page.text.count('class="timeline__item')
        print(
            f"  {agreement['candidate_ref']} ({agreement['state']}): {events} events on the "
            f"timeline at {web}/console/agreements/{agreement['id']}"
        )
    report = browser.get(f"{web}/console/report.csv", timeout=30)
    funnel = [line for line in report.text.splitlines() if line.startswith("funnel,")]
    print("  weekly report: " + "; ".join(line.split(",", 1)[1] for line in funnel))
    print(
        f"  with `offerseal up`, make your own account: offerseal users add you@example.com "
        f"--role admin --tenant acme (prints the link to {web}/console/setup/...)"
    )
    return report.status_code == 200
