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
Counts go to bench/CHAOS.md. Exit status 1 on any loss or duplicate.

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
    lock: threading.Lock = field(default_factory=threading.Lock)


class Service:
    """The three services in one real process, restarted after each kill."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "offerseal.cli", "serve", "evidence", "contracts", "notify"],
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(30)

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
            with tally.lock:
                tally.documents[response.json()["id"]] = "0x" + hashlib.sha256(content).hexdigest()
        time.sleep(0.05)


def _offer_body(n: int) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "candidate_ref": f"chaos-{n}",
        "candidate_address": chain.account(CANDIDATE_KEY).address,
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


def agreement_load(base: str, key: str, tally: Tally, stop: threading.Event) -> None:
    headers = {"Authorization": f"Bearer {key}"}
    n = 0
    while not stop.is_set():
        n += 1
        idem = {"Idempotency-Key": uuid.uuid4().hex, "Prefer": "wait=60", **headers}
        offer = _offer_body(n)
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
        with tally.lock:
            tally.offered.add(agreement["id"])
        link = agreement["signing_link"]
        token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["token"][0]

        def sign(
            a: dict[str, Any] = agreement, t: str = token, lk: str = link
        ) -> requests.Response:
            typed = requests.get(lk, timeout=30)
            if typed.status_code != 200:
                return typed
            signature = "0x" + chain.sign_typed_data(CANDIDATE_KEY, typed.json()).hex()
            return requests.post(
                base + f"/v1/agreements/{a['id']}/signature",
                params={"token": t},
                json={"signature": signature},
                timeout=120,
            )

        # accepted, or refused because an earlier (retried) attempt already committed it
        signed = _retrying(
            tally, stop, sign, lambda r: r.status_code == 200 or "Committed" in r.text
        )
        if signed is not None:
            with tally.lock:
                tally.signed.add(agreement["id"])


def inject(fault: str, service: Service, anvil_box: dict[str, Any], tmp: Path) -> None:
    if fault == "kill9":
        service.kill()
        time.sleep(random.uniform(0.2, 1.5))
        service.start()
    elif fault == "rabbitmq":
        subprocess.run(["rabbitmqctl", "stop_app"], check=True, capture_output=True, timeout=120)
        time.sleep(2)
        subprocess.run(["rabbitmqctl", "start_app"], check=True, capture_output=True, timeout=120)
    elif fault == "postgres":
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
        "signatures_accepted": len(tally.signed),
        "signatures_not_committed": len(not_committed),
        "signatures_committed_twice": len(committed_twice),
        "invitations": len(invitations),
        "invitations_not_sent_or_marked": len(unmarked),
        "emails_received": len(mail),
        "emails_duplicated": len(doubled_mail),
        "outbox_unpublished": int(unsent),
    }


def run(seconds: float, faults: tuple[str, ...], every: float, tmp: Path) -> dict[str, Any]:
    from aiosmtpd.controller import Controller

    class Box:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email

            self.messages.append(email.message_from_bytes(envelope.content))
            return "250 OK"

    box = Box()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    name = f"offerseal_chaos_{uuid.uuid4().hex[:8]}"
    # no pooled connection: PostgreSQL is restarted under us
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    anvil_port = free_port()
    box_anvil = {
        "anvil": AnvilProcess(
            anvil_port, state_file=tmp / "anvil-state.json", log_file=tmp / "anvil.log"
        )
    }
    env = {
        "OFFERSEAL_DATA_DIR": str(tmp / "data"),
        "OFFERSEAL_DATABASE_URL": url,
        "OFFERSEAL_BROKER_URL": AMQP,
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
        "OFFERSEAL_LOG_LEVEL": "WARNING",
    }
    evidence = f"http://127.0.0.1:{env['OFFERSEAL_EVIDENCE_PORT']}"
    contracts = f"http://127.0.0.1:{env['OFFERSEAL_CONTRACTS_PORT']}"
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
    service = Service(env, tmp / "service.log")
    service.start()
    tally = Tally()
    stop = threading.Event()
    ready = _retrying(
        tally,
        threading.Event(),
        lambda: requests.get(contracts + "/healthz", timeout=5),
        lambda r: r.status_code == 200,
    )
    assert ready is not None
    loads = [
        threading.Thread(target=document_load, args=(evidence, key, tally, stop), daemon=True),
        threading.Thread(target=agreement_load, args=(contracts, key, tally, stop), daemon=True),
    ]
    for thread in loads:
        thread.start()
    started = time.monotonic()
    rng = random.Random(20261125)
    try:
        while time.monotonic() - started < seconds:
            time.sleep(every)
            fault = rng.choice(faults)
            inject(fault, service, box_anvil, tmp)
            tally.faults[fault] += 1
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
        result.update(
            quiet=quiet,
            seconds=round(time.monotonic() - started, 1),
            requests=tally.requests,
            client_retries=tally.retries,
            faults=dict(tally.faults),
        )
        return result
    finally:
        stop.set()
        service.stop()
        box_anvil["anvil"].stop()
        smtp.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


BAD = (
    "documents_lost",
    "documents_anchored_twice",
    "documents_wrong_hash",
    "signatures_not_committed",
    "signatures_committed_twice",
    "invitations_not_sent_or_marked",
    "emails_duplicated",
    "outbox_unpublished",
)


def write_results(result: dict[str, Any]) -> None:
    lines = [
        "# Chaos run",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()} "
        f"({os.cpu_count()} cores), `make chaos`: one `offerseal serve` process on PostgreSQL "
        "and RabbitMQ, Anvil, aiosmtpd; documents uploaded and agreements offered and signed "
        "while faults were injected; clients retried with the same Idempotency-Key.",
        "",
        "| what | count |",
        "|---|---|",
    ]
    for name, value in result.items():
        lines.append(f"| {name} | {json.dumps(value) if isinstance(value, dict) else value} |")
    verdict = "zero loss, zero duplicates" if all(result[k] == 0 for k in BAD) else "FAILED"
    lines += ["", f"Verdict: **{verdict}**.", ""]
    (ROOT / "bench" / "CHAOS.md").write_text("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180)
    parser.add_argument("--every", type=float, default=12, help="seconds between faults")
    parser.add_argument(
        "--local-only", action="store_true", help="only faults that touch nothing outside this run"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/CHAOS.md")
    args = parser.parse_args(argv)
    import tempfile

    with tempfile.TemporaryDirectory(prefix="offerseal-chaos-") as tmp:
        faults = LOCAL_FAULTS if args.local_only else ALL_FAULTS
        result = run(args.seconds, faults, args.every, Path(tmp))
    print(json.dumps(result, indent=2))
    if not args.no_write:
        write_results(result)
    return 0 if all(result[k] == 0 for k in BAD) and result["quiet"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
