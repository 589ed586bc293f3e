"""Notify figures for `make bench`: claiming due touchpoints among 1,000,000 planned ones in
PostgreSQL (against the naive plan without the partial index, same data, same run), dispatch
rate to a local SMTP server and a local webhook receiver, and lateness (sent minus due)."""

from __future__ import annotations

import datetime as dt
import smtplib
import subprocess
import sys
import tempfile
import time
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from bench.figures import pct
from offerseal.notify import dispatch as notify_dispatch
from offerseal.notify.adapters.channels import Outgoing, SmtpChannel, WebhookChannel
from offerseal.notify.adapters.journal import SentJournal
from offerseal.notify.models import FollowedAgreement, NotifyCandidate
from offerseal.notify.service import NotifyService
from offerseal.shared.db import Database
from offerseal.shared.links import LinkSigner
from offerseal.shared.net import free_port, wait_for_port


class NaiveSmtpChannel:
    """The naive sender the bench compares against: the standard library's EmailMessage, a new
    SMTP connection per message (what a first version would do)."""

    name = "email"

    def __init__(self, port: int) -> None:
        self.port = port

    def send(self, out: Outgoing) -> str:
        message = EmailMessage()
        message["From"] = "Bench <b@bench.local>"
        message["To"] = out.to_email or ""
        message["Subject"] = out.rendered.subject
        message["Message-ID"] = out.message_id
        message.set_content(out.rendered.text)
        message.add_alternative(out.rendered.html, subtype="html")
        with smtplib.SMTP("127.0.0.1", self.port) as client:
            client.send_message(message)
        return "sent"


HOOK_SERVER = """
import http.server, sys
class Hook(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Hook).serve_forever()
"""


def _insert(conn: Any, count: int, due_sql: str, agreement: str, prefix: str) -> None:
    conn.execute(
        sa.text(
            "INSERT INTO touchpoints (id, key, tenant, agreement_id, candidate_ref, kind, "
            "occurrence, "
            "essential, due_at, state, attempts, data, missed, created_at) "
            f"SELECT '{prefix}' || i, '{prefix}' || i, 'bench', :a, 'cand', 'closing', i, true, "
            f"{due_sql}, 'planned', 0, '{{\"state\": \"fulfilled\"}}', false, now() "
            "FROM generate_series(1, :n) AS i"
        ),
        {"a": agreement, "n": count},
    )


def run(pg_admin_url: str, planned: int = 1_000_000) -> dict[str, Any]:
    name = f"offerseal_notify_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(pg_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = pg_admin_url.rsplit("/", 1)[0] + f"/{name}"
    db = Database(url)
    out: dict[str, Any] = {"planned": planned}
    # The receivers run in their own processes, as a real SMTP server and gateway would.
    smtp_port, hook_port = free_port(), free_port()
    receivers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                f"127.0.0.1:{smtp_port}",
                "-c",
                "aiosmtpd.handlers.Sink",
            ]
        ),
        subprocess.Popen([sys.executable, "-c", HOOK_SERVER, str(hook_port)]),
    ]
    wait_for_port(smtp_port)
    wait_for_port(hook_port)
    try:
        db.migrate()
        with db.transaction() as session:
            session.add(
                NotifyCandidate(
                    tenant="bench",
                    candidate_ref="cand",
                    email="cand@example.com",
                    timezone="UTC",
                    language="en",
                    quiet_hours="00:00-00:00",
                    channels=["email"],
                    opted_out=False,
                )
            )
            session.add(
                FollowedAgreement(
                    agreement_id="ag",
                    tenant="bench",
                    candidate_ref="cand",
                    language="en",
                    employer_name="Bench",
                    position="Engineer",
                    start_at=dt.datetime.now(dt.UTC),
                    milestones=[],
                    state="committed",
                )
            )
        service = NotifyService(
            db,
            LinkSigner(b"k" * 32),
            {},
            public_url="http://x",
            evidence_url="http://x",
            checkin_interval=172800,
            quiet_hours="00:00-00:00",
            default_timezone="UTC",
            mail_domain="bench.local",
            journal=SentJournal(Path(tempfile.mkdtemp(prefix="offerseal-bench-journal-"))),
        )

        group = notify_dispatch.GROUP

        def claim_ms(rounds: int = 20) -> float:
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                with db.engine.begin() as conn:
                    conn.execute(
                        sa.text(
                            "SELECT id FROM touchpoints WHERE state = 'planned' "
                            "AND due_at <= now() "
                            "ORDER BY due_at LIMIT 100 FOR UPDATE SKIP LOCKED"
                        )
                    ).all()
                samples.append((time.perf_counter() - started) * 1000)
            return round(pct(samples, 50), 3)

        # Claim time with 10,000 planned for later, then with 1,000,000: it must not grow.
        with db.engine.begin() as conn:
            _insert(conn, 10_000, "now() + interval '1 day' + i * interval '1 second'", "ag", "a")
            conn.execute(sa.text("ANALYZE touchpoints"))
        out["claim_ms_with_10k_planned"] = claim_ms()
        with db.engine.begin() as conn:
            _insert(
                conn,
                planned - 10_000,
                "now() + interval '1 day' + i * interval '1 second'",
                "ag",
                "b",
            )
            conn.execute(sa.text("ANALYZE touchpoints"))
        out["claim_ms_with_1m_planned"] = claim_ms()
        with db.engine.begin() as conn:  # the naive plan: no index for the due query
            conn.execute(sa.text("SET LOCAL enable_indexscan = off"))
            conn.execute(sa.text("SET LOCAL enable_bitmapscan = off"))
            started = time.perf_counter()
            conn.execute(
                sa.text(
                    "SELECT id FROM touchpoints WHERE state = 'planned' AND due_at <= now() "
                    "ORDER BY due_at LIMIT 100"
                )
            ).all()
            out["claim_ms_naive_seq_scan"] = round((time.perf_counter() - started) * 1000, 1)
        out["claim_ratio_naive_vs_index"] = round(
            out["claim_ms_naive_seq_scan"] / max(out["claim_ms_with_1m_planned"], 0.001), 1
        )

        for label, channel, n in (
            ("smtp", SmtpChannel(f"smtp://127.0.0.1:{smtp_port}", "Bench <b@bench.local>"), 3000),
            ("webhook", WebhookChannel(f"http://127.0.0.1:{hook_port}/", b"s" * 32), 3000),
            ("smtp_naive", NaiveSmtpChannel(smtp_port), 1000),
        ):
            email = label.startswith("smtp")
            service.dispatcher.channels = {"email": channel} if email else {"webhook": channel}
            # The naive run also commits each outcome on its own.
            notify_dispatch.GROUP = 1 if label == "smtp_naive" else group
            with db.transaction() as session:
                session.execute(
                    sa.update(NotifyCandidate).values(channels=["email"] if email else ["webhook"])
                )
            with db.engine.begin() as conn:
                _insert(conn, n, "now() - interval '1 second'", "ag", f"{label}-")
            started = time.perf_counter()
            sent = 0
            while sent < n:
                done = service.dispatch_once(200)
                if done == 0:
                    break
                sent += done
            seconds = time.perf_counter() - started
            out[f"dispatch_{label}_per_s"] = round(n / seconds, 1)
            close = getattr(channel, "close", None)
            if close:
                close()
        notify_dispatch.GROUP = group
        out["dispatch_smtp_ratio_vs_naive"] = round(
            out["dispatch_smtp_per_s"] / out["dispatch_smtp_naive_per_s"], 1
        )

        # Lateness: 2,000 touchpoints due over 10 s while the dispatcher polls every 100 ms.
        service.dispatcher.channels = {
            "email": SmtpChannel(f"smtp://127.0.0.1:{smtp_port}", "Bench <b@bench.local>")
        }
        with db.transaction() as session:
            session.execute(sa.update(NotifyCandidate).values(channels=["email"]))
        with db.engine.begin() as conn:
            _insert(conn, 2000, "now() + i * interval '5 milliseconds'", "ag", "late-")
        stop = time.monotonic() + 15
        while time.monotonic() < stop:
            if service.dispatch_once(200) == 0:
                time.sleep(0.1)
        with db.engine.connect() as conn:
            lateness = [
                float(r[0])
                for r in conn.execute(
                    sa.text(
                        "SELECT EXTRACT(EPOCH FROM sent_at - due_at) FROM touchpoints "
                        "WHERE id LIKE 'late-%' AND state = 'sent'"
                    )
                )
            ]
        out["lateness_sent"] = len(lateness)
        out["lateness_p50_s"] = round(pct(lateness, 50), 3)
        out["lateness_p95_s"] = round(pct(lateness, 95), 3)
    finally:
        for receiver in receivers:
            receiver.terminate()
            receiver.wait(10)
        db.dispose()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return out


if __name__ == "__main__":
    import json

    print(json.dumps(run("postgresql+psycopg://postgres@127.0.0.1:5432/postgres"), indent=2))
