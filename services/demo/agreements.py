"""The agreement story of the demo, step by step: offer (to a candidate without a wallet), the
portal's path (a one-time code from the e-mail, a passkey, the commitment signed with it), a
reported delay, an amendment signed with the passkey, a milestone proved by an upload, a start,
and a breach the sweeper declares (that candidate signs with a wallet)."""

from __future__ import annotations

import datetime as dt
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from ..contracts.domain.passkeys import b64url
from ..shared.chain import typed_data_digest
from ..stack import Stack
from .common import DEMO_OTHER_KEY, links_in, say, wait_for_mail
from .passkey import SoftwarePasskey


@dataclass(frozen=True)
class Story:
    """What every step of the agreement story talks to."""

    base: str  # the contracts service
    rpc_url: str
    hr: dict[str, str]
    mail: Path  # where notify writes candidates' e-mail
    now: dt.datetime

    def agreement(self, agreement_id: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(
            f"{self.base}/v1/agreements/{agreement_id}", headers=self.hr, timeout=30
        ).json()
        return body

    def risk(self, agreement_id: str) -> dict[str, Any]:
        body: dict[str, Any] = requests.get(
            f"{self.base}/v1/agreements/{agreement_id}/risk", headers=self.hr, timeout=30
        ).json()
        return body


def agreement_story(
    stack: Stack, hr: dict[str, str], offered: Callable[[str], None] = lambda ref: None
) -> tuple[bool, str]:
    """HR offers an intent agreement; the candidate reads and signs it; anchored evidence
    confirms a milestone on chain; the chain clock passes start + grace: the breach is declared
    with the damages capped at 30% of a month's salary. Returns whether all went as expected,
    and the breached agreement's id."""
    story = Story(
        base=stack.urls["contracts"],
        rpc_url=stack.urls["rpc"],
        hr=hr,
        mail=Path(stack.settings.notify_outbox_dir or "."),
        now=dt.datetime.now(dt.UTC),
    )
    brand_messages(stack, hr)
    offer = offer_terms(story)
    agreement = offer_agreement(story, offer)
    offered(offer["candidate_ref"])
    show_invitation(story)
    passkey = SoftwarePasskey(origin=stack.urls.get("web", story.base))
    candidate_signs(story, agreement, passkey)
    new_start = (story.now + dt.timedelta(days=37)).date().isoformat()
    risk = candidate_reports_delay(story, agreement, new_start)
    amended, settled = amend_start_date(story, agreement, new_start, passkey)
    milestone = upload_confirms_milestone(story, agreement)
    started = candidate_starts(story, agreement)
    breached = other_candidate_breaches(story, offer)
    return bool(
        breached["state"] == "breached"
        and milestone["confirmed_at"]
        and started["state"] == "fulfilled"
        and risk.get("level") == "red"
        and amended["state"] == "applied"
        and settled["level"] == "yellow"
    ), str(breached["id"])


def brand_messages(stack: Stack, hr: dict[str, str]) -> None:
    """The employer's name and colour on every message, and replies to its HR team."""
    say("HR brands the candidate's messages: its name, its colour, replies to its HR team")
    branding = {
        "display_name": "Acme Robotics",
        "accent_colour": "#00703c",
        "reply_to": "hr@acme-robotics.example",
    }
    answer = requests.put(
        stack.urls["notify"] + "/v1/branding", headers=hr, json=branding, timeout=30
    )
    answer.raise_for_status()
    print(f"  {answer.json()}")


def offer_terms(story: Story) -> dict[str, Any]:
    """Damages at exactly the cap (30% of one month's salary), one milestone due tomorrow; no
    candidate address: the candidate enrols a passkey in the portal."""
    now = story.now
    return {
        "candidate_ref": "cand-042",
        "candidate_contact": {
            "email": "cand042@example.com",
            "phone": "+8613800138000",
            "timezone": "Asia/Shanghai",
        },
        "employer_name": "Acme Robotics",
        "position": "Senior Firmware Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_date": (now + dt.timedelta(days=30)).date().isoformat(),
        "grace_days": 3,
        "offer_expires_at": (now + dt.timedelta(days=5)).isoformat(),
        "language": "en",
        "milestones": [
            {
                "kind": "resignation_submitted",
                "due": (now + dt.timedelta(days=1)).date().isoformat(),
            }
        ],
        "replacement_days": 20,
    }


def offer_agreement(story: Story, offer: dict[str, Any]) -> dict[str, Any]:
    """One cent above the cap is refused; the offer at the cap goes on chain."""
    say("HR offers an intent agreement (damages 30% of one month's salary, the legal maximum)")
    base, hr = story.base, story.hr
    refused = requests.post(
        f"{base}/v1/agreements",
        headers=hr,
        timeout=60,
        json={**offer, "liquidated_damages": 900_001},
    )
    problem = refused.json()["errors"][0]
    print(
        f"  one cent above the cap: {refused.status_code} {problem['field']}: {problem['message']}"
    )
    response = requests.post(f"{base}/v1/agreements", headers=hr, timeout=60, json=offer)
    response.raise_for_status()
    pending: dict[str, Any] = response.json()
    print(
        f"  201 at once: agreement {pending['id']} {pending['state']}, its transaction "
        f"{pending['chain']['status']} (nonce {pending['chain']['nonce']}, tx "
        f"{pending['chain']['tx']}); Location {response.headers['Location']}"
    )
    agreement = {**pending, **wait_offered(story, pending["id"])}  # keeps its signing link
    print(
        f"  the chain confirmed it: {agreement['state']},"
        f" risk {agreement['risk']['level']}: {', '.join(agreement['risk']['reasons'])}"
    )
    return agreement


def wait_offered(story: Story, agreement_id: str, timeout: float = 60.0) -> dict[str, Any]:
    """An offer is answered before its block: poll its Location until the chain confirms it."""
    deadline = time.monotonic() + timeout
    agreement = story.agreement(agreement_id)
    while agreement["state"] == "offering" and time.monotonic() < deadline:
        time.sleep(0.2)
        agreement = story.agreement(agreement_id)
    if agreement["state"] != "offered":
        raise RuntimeError(f"agreement {agreement_id} is {agreement['state']}, not offered")
    return agreement


def show_invitation(story: Story) -> None:
    say("notify e-mails the signing invitation (written to the demo's mail folder)")
    invitation = wait_for_mail(story.mail, "sign")
    print(
        f"  {invitation['Subject']!r} from {invitation['From']} to {invitation['To']}, "
        f"{invitation['Message-ID']}"
    )
    [short] = [
        w
        for w in str(invitation.get_body(preferencelist=("plain",)).get_content())
        .replace("\uff1a", " ")
        .split()
        if w.startswith("http")
    ]
    print(f"  the e-mail shows a short link, {short}, which leads to the signing link")


def sign_through_link(base: str, agreement: dict[str, Any], key: str) -> requests.Response:
    """The candidate's wallet signs the typed data behind the signing link; OfferSeal relays."""
    from ..shared import chain

    link = agreement["signing_link"]
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]
    typed = requests.get(link, timeout=30).json()
    return requests.post(
        f"{base}/v1/agreements/{agreement['id']}/signature",
        params={"token": token},
        json={"signature": "0x" + chain.sign_typed_data(key, typed).hex()},
        timeout=60,
    )


def candidate_signs(story: Story, agreement: dict[str, Any], passkey: SoftwarePasskey) -> None:
    """The portal's path, as the page takes it: the text and its hash, a one-time code from the
    e-mail, a passkey enrolled (a software one here; a phone's in a browser), and the
    commitment's EIP-712 digest signed with it. The contract checks the assertion itself."""
    say(
        "the candidate opens the portal from the invitation, proves the e-mail address with a "
        "one-time code, creates a passkey and signs with it (no wallet, no ether)"
    )
    link = agreement["signing_link"]
    print(f"  the candidate's portal: {link}")
    api = link.replace("/portal/", "/v1/agreements/")  # the same origin answers the APIs

    def at(suffix: str) -> str:
        path, _, query = api.partition("?")
        return f"{path}{suffix}?{query}"

    # The candidate's browser: the proof of the code lives in its cookie (HttpOnly,
    # SameSite=Strict), and only this browser can bind a signer with it.
    browser = requests.Session()
    terms = browser.get(at("/terms"), timeout=30)
    summary = next(line for line in terms.text.splitlines() if line.startswith("3. In plain"))
    print(f"  {summary}")
    print(f"  sha256 of the text = {terms.headers['X-Terms-SHA256']} (the hash on chain)")
    browser.post(at("/enrolment/events"), json={"kind": "text_opened", "seconds": 0}, timeout=30)
    sent = browser.post(at("/enrolment/code"), json={"channel": "email"}, timeout=30)
    sent.raise_for_status()
    mail = wait_for_mail(story.mail, "Your code")
    code = next(
        w.strip(".")
        for w in mail.get_body(preferencelist=("plain",)).get_content().split()
        if w.strip(".").isdigit() and len(w.strip(".")) == 6
    )
    browser.post(at("/enrolment/verify"), json={"code": code}, timeout=30).raise_for_status()
    print(f"  code sent to {sent.json()['destination']} and confirmed in this browser")
    stranger = requests.post(  # the same link without the browser's proof binds nothing
        at("/enrolment/signer"),
        json={"kind": "wallet", "address": "0x5a5A5a5a5A5a5a5a5a5A5a5A5A5a5a5A5A5A5A5A"},
        timeout=30,
    )
    print(f"  someone else holding the link tries to bind a key: {stranger.status_code}")
    bound = browser.post(
        at("/enrolment/signer"),
        json={
            "kind": "passkey",
            "credential_id": b64url(passkey.credential_id),
            "public_key": b64url(passkey.spki()),
        },
        timeout=60,
    )
    bound.raise_for_status()
    print(f"  passkey bound on chain: the candidate is {bound.json()['address']}")
    for kind, seconds in (("text_read", 95), ("consent", 0)):
        browser.post(at("/enrolment/events"), json={"kind": kind, "seconds": seconds}, timeout=30)
    ceremony = browser.get(at("/ceremony"), timeout=30).json()
    typed = browser.get(link, headers={"Accept": "application/json"}, timeout=30).json()
    assert typed["message"]["ceremonyHash"] == ceremony["ceremony_hash"]
    print(f"  the commitment covers the ceremony's record: {ceremony['ceremony_hash']}")
    assertion = passkey.sign(typed_data_digest(typed)).as_json(passkey.credential_id)
    signed = browser.post(at("/signature"), json={"passkey": assertion}, timeout=60)
    signed.raise_for_status()
    print(f"  WebAuthn assertion verified by the contract (P-256): state {signed.json()['state']}")


def candidate_reports_delay(
    story: Story, agreement: dict[str, Any], new_start: str
) -> dict[str, Any]:
    """The check-in's "delayed" answer with a new date turns the risk red. Returns the risk."""
    say(
        "a check-in arrives (every 2 s in the demo, 48 h by default); the candidate reports a delay"
    )
    checkin = wait_for_mail(story.mail, "resignation going")
    delayed = next(u for u in links_in(checkin) if u.endswith("answer=delayed"))
    answered = requests.post(
        delayed.split("?")[0], timeout=30, json={"answer": "delayed", "new_date": new_start}
    )
    answered.raise_for_status()
    deadline = time.monotonic() + 20
    risk: dict[str, Any] = {}
    while time.monotonic() < deadline:
        risk = story.risk(agreement["id"])
        if risk["level"] == "red":
            break
        time.sleep(0.25)
    print(
        f"  answer recorded; risk is now {risk['level']}: {'; '.join(risk['reasons'])} "
        f"-> {risk['response']} (stability {risk['stability_score']})"
    )
    return risk


def amend_start_date(
    story: Story, agreement: dict[str, Any], new_start: str, passkey: SoftwarePasskey
) -> tuple[dict[str, Any], dict[str, Any]]:
    """HR proposes the later start, the candidate signs it from the e-mail with the passkey.
    Returns the applied amendment and the risk after it."""
    say(
        "HR agrees a start one week later; the candidate signs the amendment from the e-mail "
        "and the chain holds the new date"
    )
    proposed = requests.post(
        f"{story.base}/v1/agreements/{agreement['id']}/amendments",
        headers=story.hr,
        timeout=60,
        json={"start_date": new_start, "reason": "the resignation takes a week longer"},
    )
    proposed.raise_for_status()
    print(f"  amendment {proposed.json()['number']}: {proposed.json()['state']}")
    amendment_mail = wait_for_mail(story.mail, "New dates")
    amendment_link = next(u for u in links_in(amendment_mail) if "/amendments/" in u)
    typed = requests.get(amendment_link, headers={"Accept": "application/json"}, timeout=30).json()
    path, _, query = amendment_link.replace("/portal/", "/v1/agreements/").partition("?")
    applied = requests.post(
        f"{path}/signature?{query}",
        timeout=60,
        json={"passkey": passkey.sign(typed_data_digest(typed)).as_json(passkey.credential_id)},
    )
    applied.raise_for_status()
    amended: dict[str, Any] = applied.json()
    print(
        f"  {amendment_mail['Subject']!r} -> signed: {amended['state']} (tx {amended['tx_hash']}),"
        f" start {amended['start_at']}"
    )
    settled = story.risk(agreement["id"])
    print(f"  risk is now {settled['level']}: {'; '.join(settled['reasons'])}")
    return amended, settled


def upload_confirms_milestone(story: Story, agreement: dict[str, Any]) -> dict[str, Any]:
    """The stamped copy uploaded through notify's link is anchored; it waits for HR's review
    (the default tenant policy) and HR's confirmation puts the milestone on chain. Returns the
    milestone."""
    say(
        "notify asks for the stamped resignation copy; the candidate uploads it through the "
        "link; it is anchored and waits for HR, who confirms the milestone on chain"
    )
    request = wait_for_mail(story.mail, "evidence")
    upload_link = next(u for u in links_in(request) if "/v1/uploads/" in u)
    upload = requests.post(
        upload_link,
        timeout=30,
        files={"file": ("stamped.txt", b"Resignation application, stamped by the employer\n")},
    )
    upload.raise_for_status()
    document_id = upload.json()["id"]
    current: dict[str, Any] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # anchored, and recorded as awaiting HR's review
        current = story.agreement(agreement["id"])
        if current["milestones"][0]["document_id"] == document_id:
            break
        time.sleep(0.25)
    print(f"  uploaded document {document_id} anchored; awaiting HR's review (policy: review)")
    kind = current["milestones"][0]["kind"]
    confirmed = requests.post(
        f"{story.base}/v1/agreements/{agreement['id']}/milestones/{kind}/evidence",
        json={"document_id": document_id},
        headers=story.hr,
        timeout=60,
    )
    confirmed.raise_for_status()
    milestone: dict[str, Any] = story.agreement(agreement["id"])["milestones"][0]
    print(
        f"  HR confirmed: milestone {milestone['kind']} confirmed by document "
        f"{milestone['document_id']} (tx {milestone['tx_hash']})"
    )
    return milestone


def candidate_starts(story: Story, agreement: dict[str, Any]) -> dict[str, Any]:
    """HR confirms the first day; notify sends the closing e-mail. Returns the agreement."""
    say("the candidate starts: HR confirms the first day on chain")
    started: dict[str, Any] = requests.post(
        f"{story.base}/v1/agreements/{agreement['id']}/start", headers=story.hr, timeout=60
    ).json()
    closing = wait_for_mail(story.mail, "About your intent agreement")
    outcome = closing.get_body(preferencelist=("plain",)).get_content().split("\n\n")[1]
    print(f"  state {started['state']}; closing e-mail: {outcome.strip()}")
    return started


def other_candidate_breaches(story: Story, offer: dict[str, Any]) -> dict[str, Any]:
    """A second candidate signs and never starts; the chain clock jumps past start + grace and
    the sweeper declares the breach. Returns that agreement."""
    from eth_account import Account

    from ..shared import chain

    say(
        "another candidate signs, never starts; the chain clock passes start date + grace and "
        "the sweeper declares the breach"
    )
    other = Account.from_key(DEMO_OTHER_KEY)
    second = requests.post(
        f"{story.base}/v1/agreements",
        headers=story.hr,
        timeout=60,
        json={
            **offer,
            "candidate_ref": "cand-077",
            "candidate_address": other.address,
            "milestones": [],
        },
    ).json()
    wait_offered(story, second["id"])
    sign_through_link(story.base, second, DEMO_OTHER_KEY).raise_for_status()
    current = story.agreement(second["id"])

    w3 = chain.connect(story.rpc_url)
    w3.provider.make_request("evm_increaseTime", [34 * 86400])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and current["state"] != "breached":
        time.sleep(0.25)
        current = story.agreement(second["id"])
    exposure = story.risk(second["id"])["exposure"]
    print(
        f"  state {current['state']}: damages {exposure['liquidated_damages']} "
        f"= {exposure['percent_of_salary']}% of salary (cap {exposure['cap']})"
    )
    return current
