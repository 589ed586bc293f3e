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
import json
import os
import random
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bench.figures import machine, pct
from bench.invariants import BAD, check, wait_quiet
from bench.load import (
    PATHS,
    Tally,
    agreement_load,
    document_load,
    proof_poller,
    retrying,
    up_seconds,
    uptime_prober,
)
from harness.procs import AMQP, PG_ADMIN, ScratchDatabase, ServiceProcess, create_key, free_port
from offerseal.shared.anvil import AnvilProcess, wait_port_free
from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2

ROOT = Path(__file__).resolve().parents[1]
ALL_FAULTS = ("kill9", "rabbitmq", "postgres", "anvil")
LOCAL_FAULTS = ("kill9", "anvil")  # touch nothing outside this run


@dataclass
class Observed:
    """What `run(observe=...)` is shown: the service process, its database, the servers."""

    service: ServiceProcess
    database_url: str
    servers: dict[str, Any]
    tally: Tally
    database_name: str


def inject(
    fault: str,
    service: ServiceProcess,
    anvil_box: dict[str, Any],
    tmp: Path,
    servers: dict[str, Any],
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
    quiet_after: float = 0.0,
    amqp_url: str | None = None,
) -> dict[str, Any]:
    """Load for `quiet_seconds` without faults, then `seconds` with a fault every `every`
    seconds (no faults: `seconds` of load alone), then `quiet_after` seconds without faults
    again; `clients` agreement clients.
    `private_servers` (default: when PostgreSQL or RabbitMQ is among the faults) starts
    servers of our own for the run; otherwise the machine's RabbitMQ at `amqp_url` (a
    virtual host of the caller's own; default: its default virtual host). `observe` is
    called at the start, every `observe_every` seconds and at the end of the load (`make
    soak`)."""
    from aiosmtpd.controller import Controller

    class Box:
        def __init__(self) -> None:
            self.messages: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            import email

            message = email.message_from_bytes(envelope.content)
            message["X-Chaos-Received"] = f"{time.time():.3f}"  # when, for a duplicate's story
            self.messages.append(message)
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
    amqp = servers["rabbitmq"].url if private_servers else amqp_url or AMQP
    box = Box()
    smtp = Controller(box, hostname="127.0.0.1", port=free_port())
    smtp.start()
    # no pooled connection: PostgreSQL is restarted under us
    scratch = ScratchDatabase(pg_admin, "offerseal_chaos", pooled=False)
    url, name = scratch.url, scratch.name
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
    service = ServiceProcess(env, tmp / "service.log", workers=workers)
    stop = threading.Event()
    try:
        key = create_key(env, "hr", "chaos")
        service.start()
        ready = retrying(
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
        load = [round(os.getloadavg()[0], 1)]
        stop.wait(quiet_seconds)
        load.append(round(os.getloadavg()[0], 1))
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
        # the fault-free rate again, on the chain the faults left (Anvil's blocks cost more
        # as its chain grows): the rate under faults is weighed against both ends
        stop.wait(quiet_after)
        after_wall = time.time()
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
                "fault_free_after_per_s": round(
                    _count(tally, path, ended_wall, after_wall) / quiet_after, 3
                )
                if quiet_after
                else None,
                "under_faults": _count(tally, path, started_wall, ended_wall),
            }
            for path in PATHS
        }
        result.update(
            quiet=quiet,
            seconds=round(time.monotonic() - started, 1),
            quiet_seconds=quiet_seconds,
            quiet_after_seconds=quiet_after,
            fault_seconds=round(faulted, 1),
            down_seconds=round(down, 1),
            healthy_seconds=round(up_seconds(tally, started_wall, ended_wall), 1),
            agreement_clients=clients,
            workers=workers,
            load_average=[*load, round(os.getloadavg()[0], 1)],
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
            scratch.drop()
        finally:
            for server in servers.values():
                server.stop()


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
            cell = f"{pct(got, 50):.1f} / {max(got):.1f}"
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
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}, `make chaos`: "
        f"{_served(result)} on PostgreSQL "
        "and RabbitMQ (private servers of the run), Anvil, aiosmtpd; documents uploaded and "
        f"agreements offered and signed by {result['agreement_clients']} clients, first "
        f"{result['quiet_seconds']:g} s without faults, then {result['fault_seconds']:g} s "
        f"with faults, then {result.get('quiet_after_seconds', 0):g} s without faults again; "
        "clients retried with the same Idempotency-Key. Load average (1 min) at "
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
        "serves). The fault-free rate is measured before the faults and again after them "
        "(the same load, no faults): Anvil mines each transaction in a block whose cost grows "
        "with the chain, so the path that sends a transaction per request is slower at the "
        "end of a run whatever the faults. Expected = the mean of the two fault-free rates "
        "(the rate at the middle of the fault phase, the decline being linear in the chain's "
        "length) x up time; the target is a ratio of at least 0.8. The last column weighs "
        "against the rate before the faults alone.",
        "",
        "| path | fault-free per s (before / after) | under faults (count) | expected (a) "
        "| ratio (a) | expected (b) | ratio (b) | ratio (a), before only |",
        "|---|---|---|---|---|---|---|---|",
    ]
    up_a = result["fault_seconds"] - result["down_seconds"]
    up_b = result.get("healthy_seconds", up_a)
    for path, rate in result["rates"].items():
        before, after = rate["fault_free_per_s"], rate.get("fault_free_after_per_s")
        free = (before + after) / 2 if before and after else before
        cells = []
        for up, by in ((up_a, free), (up_b, free), (up_a, before)):
            expected = by * up if by else None
            ratio = f"{rate['under_faults'] / expected:.2f}" if expected else "-"
            cells += [str(expected and round(expected)), ratio]
        lines.append(
            f"| {path} | {before} / {after if after is not None else '-'} | "
            f"{rate['under_faults']} | " + " | ".join(cells[:4]) + f" | {cells[5]} |"
        )
    lines += [
        "",
        f"Fault phase {result['fault_seconds']:g} s; (a) up {up_a:.1f} s (faults lasted "
        f"{result['down_seconds']:g} s in all); (b) healthy {up_b:.1f} s; fault-free "
        f"{result['quiet_seconds']:g} s before and {result.get('quiet_after_seconds', 0):g} s "
        "after.",
        "",
        "## Invariants and counts",
        "",
        "| what | count |",
        "|---|---|",
    ]
    for name, value in summary.items():
        lines.append(f"| {name} | {json.dumps(value) if isinstance(value, dict) else value} |")
    verdict = "zero loss, zero duplicates" if all(result[k] == 0 for k in BAD) else "FAILED"
    resent = result.get("emails_resent_after_kill_in_smtp_window", 0)
    if resent and verdict != "FAILED":
        verdict += (
            f" (but {resent} e-mail(s) received twice with one Message-ID: the server took it "
            "within a second before a SIGKILL, which came before the dispatcher's journal "
            "line; SMTP's own window, docs/api.md)"
        )
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
    parser.add_argument(
        "--quiet-after",
        type=float,
        default=60,
        help="seconds of load without faults after them (the fault-free rate at the end)",
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
            quiet_after=args.quiet_after,
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
