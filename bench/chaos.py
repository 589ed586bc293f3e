"""`make chaos`: faults under steady load, then an invariant checker.

One real `offerseal serve evidence contracts notify` process on PostgreSQL and RabbitMQ, a real
Anvil and a real SMTP server take a steady load (documents uploaded, agreements offered and
signed by the candidate) while faults are injected: the service process is killed with SIGKILL
and restarted, RabbitMQ and PostgreSQL are restarted, Anvil is restarted from its saved state.
Clients behave as real ones do: a request that failed is retried with the same Idempotency-Key.

Afterwards the checker proves, from the database, the chain and the mailbox:
- every document answered 201 is anchored exactly once (one current batch, its root on chain);
- every agreement whose signature was accepted is Committed on chain, committed once;
- every invitation went out exactly once (one e-mail per touchpoint) or is marked;
- no outbox row is left unpublished.
- every offer answered 201 is on chain once; no nonce is left taken and unmined (no gap).
Recovery is measured too: the load runs a quiet period without faults first (the fault-free
rate of each path), then for each fault the time from its end to the next success of each
path (document 201; offer 201 and on chain; signature 200 and Committed; e-mail delivered;
proof served for a document accepted after the fault). Several agreement clients run at once,
so multicalls and pipelined nonces are under fault too. PostgreSQL and RabbitMQ are private
servers started for the run (restarting the machine's own would disturb everyone else).
Counts and the recovery table go to bench/CHAOS.md. Exit status 1 on any loss or duplicate.

`--local-only` injects only the faults that touch nothing outside the run (SIGKILL, Anvil);
tests/integration/test_chaos.py runs that short form in `make test`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from offerseal.shared import chain
from offerseal.shared.anvil import AnvilProcess, wait_port_free
from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2
from offerseal.shared.net import free_port

ROOT = Path(__file__).resolve().parents[1]
PG_ADMIN = os.environ.get(
    "OFFERSEAL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
AMQP = os.environ.get("OFFERSEAL_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
CANDIDATE_KEY = "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a"


def candidate_key(client: int) -> str:
    """Each agreement client offers to its own candidate (one candidate signing several
    offers at once races on the candidate's nonce: a real case, but not this load's)."""
    if client == 0:
        return CANDIDATE_KEY
    return "0x" + hashlib.sha256(f"offerseal chaos candidate {client}".encode()).hexdigest()


ALL_FAULTS = ("kill9", "rabbitmq", "postgres", "anvil")
LOCAL_FAULTS = ("kill9", "anvil")  # touch nothing outside this run


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


@dataclass
class Observed:
    """What `run(observe=...)` is shown: the service process, its database, the servers."""

    service: Service
    database_url: str
    servers: dict[str, Any]
    tally: Tally
    database_name: str


SLOW = 4.0  # seconds: an agreement (offer to signature) slower than this is listed
PATHS = ("intake", "offer", "signature", "email", "anchoring")


class Service:
    """The three services in one real process, restarted after each kill; or, with `workers`,
    under the pre-fork server (`offerseal serve --workers N`), whose arbiter forks a killed
    worker again from its already imported modules."""

    def __init__(self, env: dict[str, str], log: Path, workers: int = 0) -> None:
        self.env, self.log, self.workers = env, log, workers
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        more = ["--workers", str(self.workers)] if self.workers else []
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    *("-m", "offerseal.cli", "serve", "evidence", "contracts", "notify"),
                    *more,
                ],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

    def kill_workers(self) -> None:
        """SIGKILL every worker process at once (every process that serves or works), not
        the arbiter; returns when they are gone. The arbiter forks their replacements."""
        assert self.process is not None
        pid = self.process.pid
        workers = [int(w) for w in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
        for worker in workers:
            os.kill(worker, signal.SIGKILL)
        while any(Path(f"/proc/{w}").exists() and not _zombie(w) for w in workers):
            time.sleep(0.01)


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "ZX"
    except (OSError, IndexError):
        return True

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


def _retrying(tally: Tally, stop: threading.Event, call: Any, done: Any) -> Any:
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
        response = _retrying(
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
        offered = _retrying(
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

        signed = _retrying(tally, stop, sign, accepted)
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


def inject(
    fault: str, service: Service, anvil_box: dict[str, Any], tmp: Path, servers: dict[str, Any]
) -> None:
    """One fault, returning when it ended (the process started again, the server back)."""
    if fault == "kill9" and service.workers:  # the arbiter forks them again at once
        service.kill_workers()
    elif fault == "kill9":  # a process manager starts it again, cold
        service.kill()
        time.sleep(random.uniform(0.2, 1.5))
        service.start()
    elif fault == "rabbitmq":
        rabbit = servers.get("rabbitmq")
        if rabbit is not None:
            rabbit.stop_app()
            time.sleep(2)
            rabbit.start_app()
        else:
            ctl = ["rabbitmqctl"]
            subprocess.run([*ctl, "stop_app"], check=True, capture_output=True, timeout=120)
            time.sleep(2)
            subprocess.run([*ctl, "start_app"], check=True, capture_output=True, timeout=120)
    elif fault == "postgres":
        postgres = servers.get("postgres")
        if postgres is not None:
            postgres.restart()
        else:
            version = sorted(os.listdir("/etc/postgresql"))[0]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                capture_output=True,
                timeout=120,
            )
    elif fault == "anvil":  # stopped (it saves its state), started again from that state
        old: AnvilProcess = anvil_box["anvil"]
        old.stop()
        wait_port_free(old.port)
        anvil_box["anvil"] = AnvilProcess(
            old.port, state_file=tmp / "anvil-state.json", log_file=tmp / "anvil.log"
        )


def wait_quiet(db: sa.Engine, tally: Tally, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.connect() as conn:
            pending_docs = conn.execute(
                sa.text(  # a document is anchored when the batch of its current proof is
                    "SELECT count(*) FROM documents d LEFT JOIN batches b ON b.id = d.batch_id"
                    " WHERE b.state IS NULL OR b.state <> 'anchored'"
                )
            ).scalar_one()
            unsent = conn.execute(
                sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
            ).scalar_one()
            ops = conn.execute(
                sa.text("SELECT count(*) FROM chain_ops WHERE state = 'prepared'")
            ).scalar_one()
            sending = conn.execute(
                sa.text(
                    "SELECT count(*) FROM touchpoints WHERE kind = 'invitation' "
                    "AND state NOT IN ('sent','skipped','failed','cancelled')"
                )
            ).scalar_one()
        if pending_docs == 0 and unsent == 0 and ops == 0 and sending == 0:
            return True
        time.sleep(1)
    return False


def check(
    db: sa.Engine, rpc: str, registry: str, agreements: str, tally: Tally, mail: list[Any]
) -> dict[str, Any]:
    from offerseal.contracts.adapters.chain import IntentAgreementsChain  # noqa: F401
    from offerseal.evidence.adapters.registry import RegistryClient

    w3 = chain.connect(rpc)
    reg = RegistryClient(w3, registry)
    lost, duplicated, wrong_hash = [], [], []
    with db.connect() as conn:
        for doc_id, sha in tally.documents.items():
            row = conn.execute(
                sa.text(
                    "SELECT d.seq, d.sha256, b.state AS status FROM documents d"
                    " LEFT JOIN batches b ON b.id = d.batch_id WHERE d.id = :i"
                ),
                {"i": doc_id},
            ).one_or_none()
            if row is None or row.status != "anchored":
                lost.append(doc_id)
                continue
            if row.sha256 != sha:
                wrong_hash.append(doc_id)
            current = conn.execute(
                sa.text(
                    "SELECT b.root FROM batch_members m JOIN batches b ON b.id = m.batch_id "
                    "WHERE m.document_seq = :s AND b.state = 'anchored'"
                ),
                {"s": row.seq},
            ).all()
            if len(current) != 1:
                duplicated.append(doc_id)
            elif reg.anchored_at(bytes.fromhex(current[0].root[2:])) == 0:
                lost.append(doc_id)
        committed_twice, not_committed = [], []
        details: list[str] = []
        contract = w3.eth.contract(
            address=agreements, abi=chain.artifact("IntentAgreements")["abi"]
        )
        for agreement_id in tally.signed:
            onchain_id, state = conn.execute(
                sa.text("SELECT onchain_id, state FROM agreements WHERE id = :i"),
                {"i": agreement_id},
            ).one()
            commits = conn.execute(
                sa.text(
                    "SELECT count(*) FROM chain_ops WHERE agreement_id = :i AND op = 'commit' "
                    "AND state = 'mined'"
                ),
                {"i": agreement_id},
            ).scalar_one()
            onchain = int(contract.functions.stateOf(bytes.fromhex(onchain_id[2:])).call())
            if onchain != 2 or state != "committed":  # 2: Committed
                not_committed.append(agreement_id)
            if commits != 1:
                committed_twice.append(agreement_id)
            if (onchain != 2 or state != "committed" or commits != 1) and len(details) < 10:
                ops = conn.execute(
                    sa.text(
                        "SELECT op, state, error, nonce FROM chain_ops WHERE agreement_id = :i "
                        "ORDER BY id"
                    ),
                    {"i": agreement_id},
                ).all()
                details.append(
                    f"{agreement_id}: db {state}, chain {onchain}, ops "
                    + ", ".join(f"{o.op}/{o.state}/{o.error}/{o.nonce}" for o in ops)
                )
        offers_not_on_chain, offered_twice = [], []
        for agreement_id in tally.offered:
            onchain_id, state = conn.execute(
                sa.text("SELECT onchain_id, state FROM agreements WHERE id = :i"),
                {"i": agreement_id},
            ).one()
            offers = conn.execute(
                sa.text(
                    "SELECT count(*) FROM chain_ops WHERE agreement_id = :i AND op = 'offer' "
                    "AND state = 'mined'"
                ),
                {"i": agreement_id},
            ).scalar_one()
            onchain = int(contract.functions.stateOf(bytes.fromhex(onchain_id[2:])).call())
            if onchain == 0 or state in ("offering", "failed"):  # 0: None
                offers_not_on_chain.append(agreement_id)
            if offers > 1:
                offered_twice.append(agreement_id)
        # a nonce taken (its transaction stored) that the chain never mined: a gap
        nonce_gaps = 0
        for signer, next_nonce in conn.execute(
            sa.text("SELECT signer, next_nonce FROM signer_nonces")
        ).all():
            mined = w3.eth.get_transaction_count(signer, "latest")
            pending = w3.eth.get_transaction_count(signer, "pending")
            if int(next_nonce) > mined or pending != mined:
                nonce_gaps += 1
        invitations = conn.execute(
            sa.text("SELECT id, state FROM touchpoints WHERE kind = 'invitation'")
        ).all()
        unsent = conn.execute(
            sa.text("SELECT count(*) FROM outbox WHERE sent_at IS NULL")
        ).scalar_one()
    per_touchpoint = Counter(m["Message-ID"] for m in mail)
    doubled_mail = [k for k, v in per_touchpoint.items() if v > 1]
    unmarked = [t.id for t in invitations if t.state not in ("sent", "skipped", "failed")]
    return {
        "documents_201": len(tally.documents),
        "documents_lost": len(lost),
        "documents_anchored_twice": len(duplicated),
        "documents_wrong_hash": len(wrong_hash),
        "agreements_offered": len(tally.offered),
        "offers_not_on_chain": len(offers_not_on_chain),
        "offers_on_chain_twice": len(offered_twice),
        "signer_nonce_gaps": nonce_gaps,
        "signatures_accepted": len(tally.signed),
        "signatures_not_committed": len(not_committed),
        "signatures_committed_twice": len(committed_twice),
        "invitations": len(invitations),
        "invitations_not_sent_or_marked": len(unmarked),
        "emails_received": len(mail),
        "emails_duplicated": len(doubled_mail),
        "outbox_unpublished": int(unsent),
        "details": details,
    }


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def recovery(tally: Tally, run_end: float) -> dict[str, Any]:
    """For each fault, the time from its end to the next success of each path (anchoring: the
    proof of a document accepted after the fault); None when none came before `run_end`."""
    per_fault = []
    for kind, begin, end in tally.windows:
        times: dict[str, float | None] = {}
        for path in PATHS:
            if path == "anchoring":
                later = [
                    tally.proved_at[d]
                    for d, t in tally.accepted_at.items()
                    if t >= end and d in tally.proved_at
                ]
            else:
                later = [t for t in tally.events.get(path, []) if t >= end]
            times[path] = round(min(later) - end, 2) if later else None
        per_fault.append({"fault": kind, "began": begin, "ended": end, "recovery": times})
    return {"per_fault": per_fault, "run_end": run_end}


def _count(tally: Tally, path: str, since: float, until: float) -> int:
    return sum(1 for t in tally.events.get(path, []) if since <= t < until)


def run(
    seconds: float,
    faults: tuple[str, ...],
    every: float,
    tmp: Path,
    quiet_seconds: float = 0.0,
    clients: int = 4,
    private_servers: bool | None = None,
    workers: int = 0,
    observe: Callable[[Observed], None] | None = None,
    observe_every: float = 60.0,
) -> dict[str, Any]:
    """Load for `quiet_seconds` without faults, then `seconds` with a fault every `every`
    seconds (no faults: `seconds` of load alone); `clients` agreement clients.
    `private_servers` (default: when PostgreSQL or RabbitMQ is among the faults) starts
    servers of our own for the run. `observe` is called at the start, every `observe_every`
    seconds and at the end of the load (`make soak`)."""
    from aiosmtpd.controller import Controller

    class Box:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email

            self.messages.append(email.message_from_bytes(envelope.content))
            tally.success("email")
            return "250 OK"

    tally = Tally()
    if private_servers is None:
        private_servers = "postgres" in faults or "rabbitmq" in faults
    servers: dict[str, Any] = {}
    if private_servers:
        from bench.servers import PrivatePostgres, PrivateRabbit

        servers["postgres"] = PrivatePostgres()
        servers["rabbitmq"] = PrivateRabbit()
    pg_admin = servers["postgres"].url if private_servers else PG_ADMIN
    amqp = servers["rabbitmq"].url if private_servers else AMQP
    box = Box()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    name = f"offerseal_chaos_{uuid.uuid4().hex[:8]}"
    # no pooled connection: PostgreSQL is restarted under us
    admin = sa.create_engine(pg_admin, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin.rsplit("/", 1)[0] + f"/{name}"
    anvil_port = free_port()
    box_anvil = {
        "anvil": AnvilProcess(
            anvil_port, state_file=tmp / "anvil-state.json", log_file=tmp / "anvil.log"
        )
    }
    env = {
        "OFFERSEAL_DATA_DIR": str(tmp / "data"),
        "OFFERSEAL_DATABASE_URL": url,
        "OFFERSEAL_BROKER_URL": amqp,
        "OFFERSEAL_RPC_URL": box_anvil["anvil"].url,
        "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
        "OFFERSEAL_CONTRACTS_SIGNER_KEY": ANVIL_DEV_KEY_2,
        "OFFERSEAL_EVIDENCE_PORT": str(free_port()),
        "OFFERSEAL_CONTRACTS_PORT": str(free_port()),
        "OFFERSEAL_NOTIFY_PORT": str(free_port()),
        "OFFERSEAL_SMTP_URL": f"smtp://127.0.0.1:{smtp.port}",
        "OFFERSEAL_QUIET_HOURS": "00:00-00:00",
        "OFFERSEAL_BATCH_INTERVAL": "500ms",
        "OFFERSEAL_DISPATCH_INTERVAL": "200ms",
        "OFFERSEAL_PUBLIC_RATE_LIMIT": "100000/minute",
        "OFFERSEAL_LOG_LEVEL": os.environ.get("CHAOS_LOG_LEVEL", "WARNING"),
    }
    evidence = f"http://127.0.0.1:{env['OFFERSEAL_EVIDENCE_PORT']}"
    contracts = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
    notify = f"http://127.0.0.1:{env['OFFERSEAL_NOTIFY_PORT']}"
    service = Service(env, tmp / "service.log", workers)
    stop = threading.Event()
    try:
        key = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "offerseal.cli",
                    "keys",
                    "create",
                    "--role",
                    "hr",
                    "--tenant",
                    "chaos",
                ],
                env={**os.environ, **env},
                capture_output=True,
                text=True,
                check=True,
                timeout=120,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        service.start()
        ready = _retrying(
            tally,
            threading.Event(),
            lambda: requests.get(contracts + "/healthz", timeout=5),
            lambda r: r.status_code == 200,
        )
        assert ready is not None
        loads = [
            threading.Thread(target=document_load, args=(evidence, key, tally, stop), daemon=True),
            threading.Thread(target=proof_poller, args=(evidence, key, tally, stop), daemon=True),
            threading.Thread(
                target=uptime_prober,
                args=([evidence, contracts, notify], tally, stop),
                daemon=True,
            ),
        ] + [
            threading.Thread(
                target=agreement_load, args=(contracts, key, tally, stop, i), daemon=True
            )
            for i in range(clients)
        ]
        for thread in loads:
            thread.start()
        quiet_from = time.time()
        load = [os.getloadavg()[0]]
        stop.wait(quiet_seconds)
        load.append(os.getloadavg()[0])
        started_wall = time.time()
        started = time.monotonic()
        rng = random.Random(20261125)
        watched = Observed(service, url, servers, tally, name)
        if observe is not None:
            observe(watched)
            next_look = time.monotonic() + observe_every
        while not faults and time.monotonic() - started < seconds:
            time.sleep(1.0)
            if observe is not None and time.monotonic() >= next_look:
                observe(watched)
                next_look += observe_every
        while faults and time.monotonic() - started < seconds:
            time.sleep(every)
            fault = rng.choice(faults)
            began = time.time()
            inject(fault, service, box_anvil, tmp, servers)
            tally.windows.append((fault, began, time.time()))
            tally.faults[fault] += 1
        # the last fault's recovery is measured before the load stops
        if faults:
            time.sleep(min(every, 10))
        if observe is not None:
            observe(watched)
        ended_wall = time.time()
        stop.set()
        for thread in loads:
            thread.join(180)
        engine = sa.create_engine(url, poolclass=NullPool)
        quiet = wait_quiet(engine, tally, 240)
        with engine.connect() as conn:
            deployments: dict[str, str] = {
                str(n): str(a)
                for n, a in conn.execute(
                    sa.text("SELECT name, address FROM chain_deployments")
                ).all()
            }
        result = check(
            engine,
            box_anvil["anvil"].url,
            deployments["EvidenceRegistry"],
            deployments["IntentAgreements"],
            tally,
            box.messages,
        )
        engine.dispose()
        down = sum(end - begin for _, begin, end in tally.windows)
        faulted = ended_wall - started_wall
        rates = {
            path: {
                "fault_free_per_s": round(
                    _count(tally, path, quiet_from, started_wall) / quiet_seconds, 3
                )
                if quiet_seconds
                else None,
                "under_faults": _count(tally, path, started_wall, ended_wall),
            }
            for path in PATHS
        }
        result.update(
            quiet=quiet,
            seconds=round(time.monotonic() - started, 1),
            quiet_seconds=quiet_seconds,
            fault_seconds=round(faulted, 1),
            down_seconds=round(down, 1),
            healthy_seconds=round(up_seconds(tally, started_wall, ended_wall), 1),
            agreement_clients=clients,
            workers=workers,
            load_average=[*load, os.getloadavg()[0]],
            private_servers=private_servers,
            offers_failed=len(tally.offers_failed),
            signatures_accepted_as_refusal=dict(tally.sign_refusals),
            requests=tally.requests,
            client_retries=tally.retries,
            faults=dict(tally.faults),
        )
        result["rates"] = rates
        result["recovery"] = recovery(tally, ended_wall)
        result["slow_agreements"] = sorted(tally.slow)
        result["latency"] = {path: list(v) for path, v in tally.latency.items()}
        return result
    finally:
        stop.set()
        service.stop()
        box_anvil["anvil"].stop()
        smtp.stop()
        try:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        finally:
            admin.dispose()
            for server in servers.values():
                server.stop()


BAD = (
    "documents_lost",
    "offers_not_on_chain",
    "offers_on_chain_twice",
    "signer_nonce_gaps",
    "documents_anchored_twice",
    "documents_wrong_hash",
    "signatures_not_committed",
    "signatures_committed_twice",
    "invitations_not_sent_or_marked",
    "emails_duplicated",
    "outbox_unpublished",
)


FINDINGS = "<!-- findings: kept by make chaos -->"
TARGET_SECONDS = 5.0  # each path back within 5 s of a fault's end (Anvil: plus one block)


def recovery_table(result: dict[str, Any]) -> list[str]:
    """Per fault kind and path: p50 and max seconds from the fault's end to the path's next
    success; a fault after which the path did not succeed before the next fault (or the end)
    counts as not recovered, with the time it had."""
    per_fault = result["recovery"]["per_fault"]
    kinds = sorted({f["fault"] for f in per_fault})
    lines = [
        "| fault (count) | " + " | ".join(PATHS) + " |",
        "|---|" + "---|" * len(PATHS),
    ]
    for kind in kinds:
        rows = [f for f in per_fault if f["fault"] == kind]
        cells = []
        for path in PATHS:
            got = [f["recovery"][path] for f in rows if f["recovery"][path] is not None]
            missing = len(rows) - len(got)
            if not got:
                cells.append("never")
                continue
            cell = f"{_percentile(got, 0.5):.1f} / {max(got):.1f}"
            if missing:
                cell += f" ({missing} never)"
            cells.append(cell)
        lines.append(f"| {kind} ({len(rows)}) | " + " | ".join(cells) + " |")
    return lines


def _served(result: dict[str, Any]) -> str:
    workers = result.get("workers", 0)
    if not workers:
        return "one `offerseal serve` process (SIGKILL: killed, started again cold)"
    return (
        f"`offerseal serve --workers {workers}` (SIGKILL: every worker killed at once, the "
        "arbiter forks them again)"
    )


def write_results(result: dict[str, Any], note: str = "") -> None:
    summary = {
        k: v
        for k, v in result.items()
        if k not in ("rates", "recovery", "details", "slow_agreements", "latency")
    }
    lines = [
        "# Chaos run",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} cores), `make chaos`: {_served(result)} on PostgreSQL "
        "and RabbitMQ (private servers of the run), Anvil, aiosmtpd; documents uploaded and "
        f"agreements offered and signed by {result['agreement_clients']} clients, first "
        f"{result['quiet_seconds']:g} s without faults, then {result['fault_seconds']:g} s "
        "with faults; clients retried with the same Idempotency-Key. Load average (1 min) at "
        f"the start, the first fault and the end: {result.get('load_average', '-')}; the 2 cores "
        "are shared with other agents' work.",
        "",
        "## Recovery: seconds from a fault's end to each path's next success (p50 / max)",
        "",
        "intake: a document answered 201; offer: an offer answered 201 and on chain; "
        "signature: a signature answered 200 (or refused as already committed by an earlier "
        "attempt); email: an e-mail delivered; "
        "anchoring: the proof served of a document accepted after the fault's end. A fault "
        "ends when the killed processes are gone (SIGKILL under the pre-fork arbiter: it forks "
        "them again, and that time counts as recovery) or the process was started again "
        "(SIGKILL of a single process), the server answers again (PostgreSQL, RabbitMQ) or "
        "Anvil answers again from its saved state.",
        "",
        *recovery_table(result),
        "",
        "## Rates",
        "",
        "Up time under faults, two readings: (a) the fault phase less the faults themselves "
        "(from the injection to the process started again or the server back); (b) the time "
        "every service's /healthz answered 200 (a restarted process is not up until it "
        "serves). Expected = fault-free rate x up time; the target is a ratio of at least 0.8.",
        "",
        "| path | fault-free per s | under faults (count) | expected (a) | ratio (a) "
        "| expected (b) | ratio (b) |",
        "|---|---|---|---|---|---|---|",
    ]
    up_a = result["fault_seconds"] - result["down_seconds"]
    up_b = result.get("healthy_seconds", up_a)
    for path, rate in result["rates"].items():
        free = rate["fault_free_per_s"]
        cells = []
        for up in (up_a, up_b):
            expected = free * up if free else None
            ratio = f"{rate['under_faults'] / expected:.2f}" if expected else "-"
            cells += [str(expected and round(expected)), ratio]
        lines.append(f"| {path} | {free} | {rate['under_faults']} | " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Fault phase {result['fault_seconds']:g} s; (a) up {up_a:.1f} s (faults lasted "
        f"{result['down_seconds']:g} s in all); (b) healthy {up_b:.1f} s.",
        "",
        "## Invariants and counts",
        "",
        "| what | count |",
        "|---|---|",
    ]
    for name, value in summary.items():
        lines.append(f"| {name} | {json.dumps(value) if isinstance(value, dict) else value} |")
    verdict = "zero loss, zero duplicates" if all(result[k] == 0 for k in BAD) else "FAILED"
    lines += ["", f"Verdict: **{verdict}**.", ""]
    lines += ["## Each fault", "", "| fault | lasted (s) | " + " | ".join(PATHS) + " |"]
    lines.append("|---|---|" + "---|" * len(PATHS))
    for f in result["recovery"]["per_fault"]:
        cells = ["-" if f["recovery"][p] is None else f"{f['recovery'][p]:.1f}" for p in PATHS]
        lines.append(
            f"| {f['fault']} | {f['ended'] - f['began']:.1f} | " + " | ".join(cells) + " |"
        )
    if result.get("details"):
        lines += ["", "Violations, first ones:", ""] + [f"- {d}" for d in result["details"]]
    if note:
        lines += ["", note.rstrip(), ""]
    target = ROOT / "bench" / "CHAOS.md"
    # the written reading below the marker (findings, what was fixed) outlives each run
    kept = target.read_text().partition(FINDINGS)[2] if target.exists() else ""
    if kept:
        lines += ["", FINDINGS + kept.rstrip("\n")]
    target.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180, help="seconds with faults")
    parser.add_argument("--every", type=float, default=12, help="seconds between faults")
    parser.add_argument(
        "--quiet", type=float, default=60, help="seconds of load without faults first"
    )
    parser.add_argument("--clients", type=int, default=4, help="agreement clients")
    parser.add_argument(
        "--workers",
        type=int,
        default=2,
        help="worker processes under the pre-fork arbiter (SIGKILL kills them all, the arbiter "
        "forks them again); 0: one process, killed and started again cold",
    )
    parser.add_argument(
        "--local-only", action="store_true", help="only faults that touch nothing outside this run"
    )
    parser.add_argument(
        "--shared-servers",
        action="store_true",
        help="restart the machine's PostgreSQL and RabbitMQ instead of private ones",
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/CHAOS.md")
    parser.add_argument("--json", type=Path, help="also write the full result here")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="offerseal-chaos-") as tmp:
        faults = LOCAL_FAULTS if args.local_only else ALL_FAULTS
        result = run(
            args.seconds,
            faults,
            args.every,
            Path(tmp),
            quiet_seconds=args.quiet,
            clients=args.clients,
            private_servers=False if args.shared_servers else None,
            workers=args.workers,
        )
        if os.environ.get("CHAOS_KEEP_LOG"):
            import shutil

            shutil.copy(Path(tmp) / "service.log", os.environ["CHAOS_KEEP_LOG"])
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    if not args.no_write:
        write_results(result)
    return 0 if all(result[k] == 0 for k in BAD) and result["quiet"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
