"""The steady load of `make chaos` and `make soak`, as real clients behave: documents uploaded,
their proofs polled, agreements offered and signed by the candidate (several clients, each its
own candidate), /healthz probed; a request that failed is retried with the same
Idempotency-Key. Every success is counted in a `Tally` with its time (recovery, rates, p95)."""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests

from offerseal.shared import chain

CANDIDATE_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


def candidate_key(client: int) -> str:
    """Each agreement client offers to its own candidate (one candidate signing several
    offers at once races on the candidate's nonce: a real case, but not this load's)."""
    if client == 0:
        return CANDIDATE_KEY
    return "0x" + hashlib.sha256(f"offerseal chaos candidate {client}".encode()).hexdigest()


@dataclass
class Tally:
    requests: int = 0
    retries: int = 0
    faults: Counter[str] = field(default_factory=Counter)
    documents: dict[str, str] = field(default_factory=dict)  # id -> sha256 (answered 201)
    signed: set[str] = field(default_factory=set)  # agreement ids whose signature was accepted
    offered: set[str] = field(default_factory=set)
    offers_failed: set[str] = field(default_factory=set)  # answered 201, then failed
    sign_refusals: Counter[str] = field(default_factory=Counter)  # "already Committed" answers
    lock: threading.Lock = field(default_factory=threading.Lock)
    # path -> wall-clock times of its successes (see PATHS)
    events: dict[str, list[float]] = field(default_factory=dict)
    accepted_at: dict[str, float] = field(default_factory=dict)  # document id -> its 201
    proved_at: dict[str, float] = field(default_factory=dict)  # document id -> proof served
    windows: list[tuple[str, float, float]] = field(default_factory=list)  # fault, start, end
    # agreements that took longer than SLOW: (began, offer 201 s, to on chain s, sign s, client)
    slow: list[tuple[float, float, float, float, int]] = field(default_factory=list)
    health: list[tuple[float, bool]] = field(default_factory=list)  # (when, every /healthz 200)

    # path -> (when, seconds the successful request took)
    latency: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def success(
        self, path: str, at: float | None = None, response: requests.Response | None = None
    ) -> None:
        when = time.time() if at is None else at
        with self.lock:
            self.events.setdefault(path, []).append(when)
            if response is not None:
                took = response.elapsed.total_seconds()
                self.latency.setdefault(path, []).append((when, took))


SLOW = 4.0  # seconds: an agreement (offer to signature) slower than this is listed
PATHS = ("intake", "offer", "signature", "email", "anchoring")


def retrying(tally: Tally, stop: threading.Event, call: Any, done: Any) -> Any:
    """Call until `done(response)` or stop; connection errors and 5xx are retried as a client
    would (the caller keeps the same Idempotency-Key)."""
    while not stop.is_set():
        with tally.lock:
            tally.requests += 1
        try:
            response = call()
            if done(response):
                return response
        except requests.RequestException:
            pass
        with tally.lock:
            tally.retries += 1
        time.sleep(0.3)
    return None


def document_load(base: str, key: str, tally: Tally, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    while not stop.is_set():
        content = f"chaos {uuid.uuid4()}".encode()
        idem = {"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=60", **headers}
        response = retrying(
            tally,
            stop,
            lambda c=content, h=idem: requests.post(
                base + "/v1/documents",
                headers=h,
                data={"kind": "other", "candidate_ref": "chaos"},
                files={"file": ("c.pdf", c, "application/pdf")},
                timeout=30,
            ),
            lambda r: r.status_code == 201,
        )
        if response is not None:
            now = time.time()
            with tally.lock:
                doc_id = response.json()["id"]
                tally.documents[doc_id] = "0x" + hashlib.sha256(content).hexdigest()
                tally.accepted_at[doc_id] = now
            tally.success("intake", now, response)
        time.sleep(0.05)


def proof_poller(base: str, key: str, tally: Tally, stop: threading.Event) -> None:
    """Anchoring as a user sees it: the time each document's proof is first served (the
    oldest documents without one are asked again every round)."""
    headers = {"Authorization": f"Bearer {key}"}
    session = requests.Session()
    while not stop.is_set():
        with tally.lock:
            waiting = [d for d in tally.accepted_at if d not in tally.proved_at][:16]
        for doc_id in waiting:
            try:
                r = session.get(base + f"/v1/documents/{doc_id}/proof", headers=headers, timeout=10)
            except requests.RequestException:
                break
            if r.status_code != 200:
                break  # the older ones come first; the rest wait for them
            now = time.time()
            with tally.lock:
                tally.proved_at[doc_id] = now
            tally.success("anchoring", now, r)
        stop.wait(0.2)


def _offer_body(n: int, candidate: str = CANDIDATE_KEY) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "candidate_ref": f"chaos-{n}",
        "candidate_address": chain.account(candidate).address,
        "candidate_contact": {"email": f"chaos{n}@example.com", "language": "en"},
        "employer_name": "Chaos Robotics",
        "position": "Engineer",
        "currency": "CNY",
        "monthly_salary": 3_000_000,
        "liquidated_damages": 900_000,
        "start_date": (now + dt.timedelta(days=40)).date().isoformat(),
        "grace_days": 3,
        "offer_expires_at": (now + dt.timedelta(days=7)).isoformat(),
        "milestones": [
            {
                "kind": "resignation_submitted",
                "due": (now + dt.timedelta(days=10)).date().isoformat(),
            }
        ],
        "language": "en",
        "replacement_days": 0,
    }


def uptime_prober(bases: list[str], tally: Tally, stop: threading.Event) -> None:
    """When the stack is up, as a client sees it: every service's /healthz answers 200."""
    session = requests.Session()
    while not stop.is_set():
        try:
            up = all(session.get(b + "/healthz", timeout=2).status_code == 200 for b in bases)
        except requests.RequestException:
            up = False
        with tally.lock:
            tally.health.append((time.time(), up))
        stop.wait(0.2)


def up_seconds(tally: Tally, since: float, until: float) -> float:
    """Seconds between `since` and `until` during which the stack answered its health checks
    (each probe's answer holds until the next probe)."""
    total = 0.0
    probes = [(t, up) for t, up in tally.health if since <= t <= until]
    for (t, up), (t_next, _) in zip(probes, [*probes[1:], (until, False)], strict=True):
        if up:
            total += t_next - t
    return total


def _until_offered(
    base: str, headers: dict[str, str], agreement: dict[str, Any], stop: threading.Event
) -> str:
    """Poll an offer answered `offering` until its block came: its state then."""
    state = str(agreement.get("state"))
    while state == "offering" and not stop.is_set():
        time.sleep(0.2)
        try:
            r = requests.get(
                base + f"/v1/agreements/{agreement['id']}", headers=headers, timeout=10
            )
        except requests.RequestException:
            continue
        if r.status_code == 200:
            state = str(r.json().get("state"))
    return state


def agreement_load(
    base: str, key: str, tally: Tally, stop: threading.Event, client: int = 0
) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    n = 0
    while not stop.is_set():
        n += 1
        idem = {"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=60", **headers}
        offer = _offer_body(client * 1_000_000 + n, candidate_key(client))
        t0 = time.time()
        offered = retrying(
            tally,
            stop,
            lambda b=offer, h=idem: requests.post(
                base + "/v1/agreements", json=b, headers=h, timeout=120
            ),
            lambda r: r.status_code == 201,
        )
        if offered is None:
            return
        agreement = offered.json()
        t1 = time.time()
        with tally.lock:
            tally.offered.add(agreement["id"])
        state = _until_offered(base, headers, agreement, stop)
        t2 = time.time()
        if state != "offered":
            if state == "failed":
                with tally.lock:
                    tally.offers_failed.add(agreement["id"])
            continue  # stopped, or the offer failed: no signature to wait for
        tally.success("offer", response=offered)
        link = agreement["signing_link"]
        token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]

        def sign(
            a: dict[str, Any] = agreement, t: str = token, lk: str = link
        ) -> requests.Response:
            typed = requests.get(lk, timeout=30)
            if typed.status_code != 200:
                return typed
            signature = "0x" + chain.sign_typed_data(candidate_key(client), typed.json()).hex()
            return requests.post(
                base + f"/v1/agreements/{a['id']}/signature",
                params={"token": t},
                json={"signature": signature},
                timeout=120,
            )

        def accepted(r: requests.Response, a: dict[str, Any] = agreement) -> bool:
            """Accepted, or refused because an earlier attempt (its answer lost to the fault)
            committed it: the refusal says "the agreement is committed, not offered", so
            the agreement's state is asked (matching "Committed" in the text, as this load
            did before, left a client retrying the committed agreement to the end of the run)."""
            if r.status_code == 200:
                return True
            if r.status_code != 409:
                return False
            try:
                now = requests.get(base + f"/v1/agreements/{a['id']}", headers=headers, timeout=10)
            except requests.RequestException:
                return False
            return now.status_code == 200 and now.json().get("state") == "committed"

        signed = retrying(tally, stop, sign, accepted)
        t3 = time.time()
        if t3 - t0 > SLOW:  # where an agreement's client waited long (see CHAOS.md)
            with tally.lock:
                tally.slow.append(
                    (t0, round(t1 - t0, 1), round(t2 - t1, 1), round(t3 - t2, 1), client)
                )
        if signed is not None:
            with tally.lock:
                tally.signed.add(agreement["id"])
                if signed.status_code != 200:
                    tally.sign_refusals[str(signed.json().get("detail"))[:160]] += 1
            tally.success("signature", response=signed)
