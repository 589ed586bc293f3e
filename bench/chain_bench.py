"""`make bench`, part two: many transactions per block. Against Anvil mining instantly, every
2 s and every 12 s (`--block-time`), with the evidence and contracts services as their own
process on PostgreSQL and RabbitMQ:

- offers: 16 clients post agreements; how many per second are answered (201, committed and
  sent, state `offering`) and how many per second are confirmed on chain (state `offered`),
  against the synchronous design on the same chain (each client waits for its block:
  `Prefer: wait=60`, as every offer did before);
- a candidate's signature to `committed` (the signing endpoint waits for the block), at random
  moments within the block time;
- an uploaded document's 201 to its proof being served.

Writes bench/out/chain.json and its own dated section of bench/RESULTS.md (between markers, the
rest of the file kept). Run alone: `.venv/bin/python -m bench.chain_bench [--quick]
[--block-times instant,2,12] [--parts offers,sync,signatures,proof]`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import random
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bench.figures import machine, pct
from bench.run import OUT, Service, time_to_proof
from harness.procs import ScratchDatabase
from offerseal.shared import chain
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.net import free_port

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "RESULTS.md"
START, END = "<!-- chain-bench:start -->", "<!-- chain-bench:end -->"
CLIENTS = 16


def offer_body(i: int, candidate: str | None = None) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC)
    return {
        "candidate_ref": f"c{i}",
        "candidate_address": candidate,
        "candidate_contact": {"email": f"c{i}@example.com"},
        "employer_name": "Bench Ltd",
        "position": "Engineer",
        "currency": "CNY",
        "monthly_salary": 2_000_000,
        "liquidated_damages": 600_000,
        "start_date": (now + dt.timedelta(days=30)).date().isoformat(),
        "offer_expires_at": (now + dt.timedelta(days=5)).isoformat(),
        "milestones": [
            {
                "kind": "resignation_submitted",
                "due": (now + dt.timedelta(days=10)).date().isoformat(),
            }
        ],
    }


def count_offered(engine: sa.Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM agreements WHERE state = 'offered' AND id = ANY(:ids)"
                ),
                {"ids": ids},
            ).scalar()
            or 0
        )


def offers(svc: Service, db_url: str, count: int, prefer_wait: bool) -> dict[str, Any]:
    """`count` offers from CLIENTS clients; answered/s and confirmed/s (until all offered)."""
    local = threading.local()
    headers = {**svc.headers, **({"Prefer": "wait=60"} if prefer_wait else {})}

    def post(i: int) -> tuple[float, str]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        started = time.perf_counter()
        r = session.post(
            svc.contracts + "/v1/agreements", headers=headers, json=offer_body(i), timeout=120
        )
        if r.status_code != 201:
            raise RuntimeError(r.text[:300])
        return time.perf_counter() - started, r.json()["id"]

    engine = sa.create_engine(db_url)
    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        answers = list(pool.map(post, range(count)))
    answered = time.perf_counter() - started
    ids = [a[1] for a in answers]
    deadline = time.monotonic() + 600
    while count_offered(engine, ids) < count:
        if time.monotonic() > deadline:
            raise RuntimeError("offers not confirmed within 10 minutes")
        time.sleep(0.05)
    confirmed = time.perf_counter() - started
    engine.dispose()
    latencies = [a[0] for a in answers]
    return {
        "offers": count,
        "clients": CLIENTS,
        "prefer_wait": prefer_wait,
        "answered_per_s": round(count / answered, 1),
        "confirmed_per_s": round(count / confirmed, 1),
        "answer_p50_s": round(pct(latencies, 50), 3),
        "answer_p95_s": round(pct(latencies, 95), 3),
        "all_confirmed_after_s": round(confirmed, 2),
    }


def signatures(svc: Service, count: int, block_time: float) -> dict[str, Any]:
    """Offer `count` agreements (waiting for them), then each candidate signs at a random
    moment within a block time: seconds from POST .../signature to its `committed` answer."""
    keys = ["0x" + hashlib.sha256(f"bench-candidate-{uuid.uuid4()}".encode()).hexdigest()]
    keys = ["0x" + hashlib.sha256(f"{keys[0]}-{i}".encode()).hexdigest() for i in range(count)]

    def offered(i: int) -> dict[str, Any]:
        r = requests.post(
            svc.contracts + "/v1/agreements",
            headers={**svc.headers, "Prefer": "wait=60"},
            json=offer_body(i, chain.account(keys[i]).address),
            timeout=120,
        )
        body: dict[str, Any] = r.json()
        if body.get("state") != "offered":
            raise RuntimeError(r.text[:300])
        return body

    with ThreadPoolExecutor(CLIENTS) as pool:
        agreements = list(pool.map(offered, range(count)))

    def sign(i: int) -> float:
        agreement = agreements[i]
        typed = requests.get(agreement["signing_link"], timeout=60).json()
        signature = chain.sign_typed_data(keys[i], typed)
        token = agreement["signing_link"].split("token=")[1]
        time.sleep(random.uniform(0, max(block_time, 0.2)))
        started = time.perf_counter()
        r = requests.post(
            f"{svc.contracts}/v1/agreements/{agreement['id']}/signature",
            params={"token": token},
            json={"signature": "0x" + signature.hex()},
            timeout=120,
        )
        if r.status_code != 200 or r.json()["state"] != "committed":
            raise RuntimeError(r.text[:300])
        return time.perf_counter() - started

    with ThreadPoolExecutor(CLIENTS) as pool:
        waits = list(pool.map(sign, range(count)))
    return {
        "signatures": count,
        "p50_s": round(pct(waits, 50), 2),
        "p95_s": round(pct(waits, 95), 2),
        "max_s": round(max(waits), 2),
    }


PARTS = ("offers", "sync", "signatures", "proof")


def run_one(
    block_time: float | None, scale: float, parts: tuple[str, ...] = PARTS, workers: int = 1
) -> dict[str, Any]:
    label = "instant" if block_time is None else f"{block_time:g}s"
    extra = () if block_time is None else ("--block-time", f"{block_time:g}")
    anvil = AnvilProcess(free_port(), extra_args=extra)
    db = ScratchDatabase()
    workdir = OUT / f"chain-{label}-{uuid.uuid4().hex[:6]}"
    workdir.mkdir(parents=True)
    out: dict[str, Any] = {"block_time": label, "workers": workers}
    try:
        svc = Service(
            anvil.url, db.url, workdir, services=("evidence", "contracts"), workers=workers
        )
        try:
            if "offers" in parts:
                n = max(16, int(400 * scale))
                print(f"[{label}] {n} offers, {CLIENTS} clients, answered at once ...", flush=True)
                out["offers_async"] = offers(svc, db.url, n, prefer_wait=False)
            if "sync" in parts:
                sync_n = max(16, int((400 if block_time is None else 64) * scale))
                print(
                    f"[{label}] {sync_n} offers, waiting for each block (Prefer: wait) ...",
                    flush=True,
                )
                out["offers_sync"] = offers(svc, db.url, sync_n, prefer_wait=True)
            if "signatures" in parts:
                sig_n = max(8, int(40 * scale))
                print(f"[{label}] {sig_n} signatures to committed ...", flush=True)
                out["signatures"] = signatures(svc, sig_n, block_time or 0.0)
            if "proof" in parts:
                out["time_to_proof"] = proof_latency(svc, block_time, scale)
        finally:
            svc.stop()
    finally:
        db.drop()
        anvil.stop()
    return out


def proof_latency(svc: Service, block_time: float | None, scale: float) -> dict[str, Any]:
    label = "instant" if block_time is None else f"{block_time:g}s"
    docs = max(10, int(60 * scale))
    rate = 10.0 if block_time is None or block_time <= 2 else 2.0
    print(f"[{label}] {docs} documents, 201 to proof ...", flush=True)
    return time_to_proof(svc, docs, rate=rate)


def section(r: dict[str, Any]) -> str:
    mark = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    lines = [
        START,
        f"## Many transactions per block ({r['date'][:10]})",
        "",
        f"Measured {r['date']} on {r['machine']} by `bench/chain_bench.py` (part of `make bench`):"
        " the evidence and contracts services as one process (`offerseal serve evidence "
        "contracts`) on PostgreSQL and RabbitMQ, against Anvil mining instantly and with "
        "`--block-time`; 16 client threads in the bench process. Raw: `bench/out/chain.json`.",
        "",
        "| chain | offers answered/s (201, `offering`) | offers confirmed/s (`offered`) | "
        "same chain, each offer waits for its block | signature -> committed | 201 -> proof |",
        "|---|---|---|---|---|---|",
    ]
    for run in r["runs"]:
        a, s, sig, tp = (
            run["offers_async"],
            run["offers_sync"],
            run["signatures"],
            run["time_to_proof"],
        )
        lines.append(
            f"| {run['block_time']} | {a['answered_per_s']} (p95 {a['answer_p95_s']} s) | "
            f"{a['confirmed_per_s']} ({a['offers']} offers, all on chain after "
            f"{a['all_confirmed_after_s']} s) | {s['confirmed_per_s']} ({s['offers']} offers) = "
            f"**{round(a['confirmed_per_s'] / s['confirmed_per_s'], 1)}x** | p50 {sig['p50_s']} s, "
            f"p95 {sig['p95_s']} s | p50 {tp['p50_s']} s, p95 {tp['p95_s']} s |"
        )
    lines += ["", "| target (2 s blocks unless named) | result | |", "|---|---|---|"]
    by = {run["block_time"]: run for run in r["runs"]}
    two = by.get("2s")
    if two is not None:
        a, sig, tp = two["offers_async"], two["signatures"], two["time_to_proof"]
        lines += [
            f"| offers with 16 clients >= 50/s | {a['confirmed_per_s']}/s confirmed on chain "
            f"({a['answered_per_s']}/s answered) | {mark(a['confirmed_per_s'] >= 50)} |",
            f"| signature -> committed p95 <= block time + 1 s (3 s) | {sig['p95_s']} s "
            f"| {mark(sig['p95_s'] <= 3)} |",
            f"| 201 -> proof p95 <= block time + 1.5 s (3.5 s) | {tp['p95_s']} s "
            f"| {mark(tp['p95_s'] <= 3.5)} |",
        ]
    twelve = by.get("12s")
    if twelve is not None:
        sig, tp = twelve["signatures"], twelve["time_to_proof"]
        lines += [
            f"| at 12 s blocks: signature -> committed p95 <= 13 s | {sig['p95_s']} s "
            f"| {mark(sig['p95_s'] <= 13)} |",
            f"| at 12 s blocks: 201 -> proof p95 <= 13.5 s | {tp['p95_s']} s "
            f"| {mark(tp['p95_s'] <= 13.5)} |",
        ]
    lines += ["", END]
    return "\n".join(lines)


def write_section(r: dict[str, Any]) -> None:
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    block = section(r)
    if START in text and END in text:
        text = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _: block, text, flags=re.S)
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    RESULTS.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a quarter of the load")
    parser.add_argument(
        "--block-times", default="instant,2,12", help="comma-separated: instant and/or seconds"
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help="comma-separated, of " + ", ".join(PARTS) + " (a run of some parts is printed and "
        "kept in bench/out/chain.json only, not written to bench/RESULTS.md)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of the services (serve --workers)"
    )
    args = parser.parse_args()
    parts = tuple(p for p in args.parts.split(",") if p)
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts: {', '.join(sorted(unknown))}")
    scale = 0.25 if args.quick else 1.0
    OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "runs": [],
    }
    for item in args.block_times.split(","):
        block_time = None if item == "instant" else float(item)
        # The 12 s run is shorter: each block holds everything sent in 12 s.
        run_scale = scale * (0.5 if block_time is not None and block_time > 2 else 1.0)
        results["runs"].append(run_one(block_time, run_scale, parts, args.workers))
        print(json.dumps(results["runs"][-1], indent=2), flush=True)
    (OUT / "chain.json").write_text(json.dumps(results, indent=2))
    if set(parts) == set(PARTS):
        write_section(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
