"""`make bench`: the evidence service's figures, measured in one run on this machine with
PostgreSQL, RabbitMQ and a real Anvil, against the naive design (one transaction per
document) on the same documents. Writes bench/RESULTS.md and bench/out/results.json.

Run: `make bench` (or `.venv/bin/python -m bench.run [--docs N]`); only the intake throughput
figures (`bench/ingest.py`: worker processes against the ceiling, hash-only intake, batched against
the naive design at its best): `.venv/bin/python -m bench.run --only ingest`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
import sqlalchemy as sa

from bench.agreement_gas import agreement_gas
from bench.figures import machine, pct
from bench.results import write_markdown
from harness.procs import AMQP, PG_ADMIN, ScratchDatabase, ServiceProcess, create_key, free_port
from offerseal.evidence.adapters.registry import RegistryClient
from offerseal.shared import chain
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2
from offerseal_verify import merkle

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


INGEST_PARTS = ("http", "hashes", "anchoring")  # bench/ingest.py's figures, `--parts`


class Service(ServiceProcess):
    """`offerseal serve evidence` (or `services`) in its own process on PostgreSQL and RabbitMQ,
    healthy once made, with an hr key (`headers`); `contracts` is the contracts service's URL."""

    def __init__(
        self,
        rpc_url: str,
        db_url: str,
        workdir: Path,
        services: tuple[str, ...] = ("evidence",),
        workers: int = 1,
        **env: str,
    ) -> None:
        self.contracts_port = free_port()
        self.contracts = f"http://127.0.0.1:{self.contracts_port}"
        environment = {
            "OFFERSEAL_DATA_DIR": str(workdir),
            "OFFERSEAL_DATABASE_URL": db_url,
            "OFFERSEAL_RPC_URL": rpc_url,
            "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
            "OFFERSEAL_BROKER_URL": AMQP,
            "OFFERSEAL_EVIDENCE_PORT": str(free_port()),
            "OFFERSEAL_LOG_LEVEL": "WARNING",
            "OFFERSEAL_WEB_THREADS": "16",
            "OFFERSEAL_CONTRACTS_PORT": str(self.contracts_port),
            "OFFERSEAL_CONTRACTS_SIGNER_KEY": ANVIL_DEV_KEY_2,
            **env,
        }
        super().__init__(environment, workdir / "service.log", services, workers)
        self.env = {**os.environ, **environment}  # what the benches' own commands run with
        self.headers = {"Authorization": f"Bearer {create_key(environment, 'hr', 'bench')}"}
        self.start()
        try:
            self.wait_healthy(60)
        except AssertionError:
            self.stop()
            raise


def ingest_http(svc: Service, docs: list[bytes], clients: int) -> dict[str, Any]:
    local = threading.local()

    def post(content: bytes) -> tuple[float, str]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        started = time.perf_counter()
        r = session.post(
            svc.base + "/v1/documents",
            headers=svc.headers,
            data={"kind": "resignation_application", "candidate_ref": "bench"},
            files={"file": ("doc.pdf", content, "application/pdf")},
            timeout=60,
        )
        elapsed = time.perf_counter() - started
        if r.status_code != 201:
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        return elapsed, r.json()["id"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        results = list(pool.map(post, docs))
    wall = time.perf_counter() - started
    latencies = [r[0] for r in results]
    return {
        "documents": len(docs),
        "clients": clients,
        "seconds": round(wall, 2),
        "docs_per_s": round(len(docs) / wall, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "ids": [r[1] for r in results],
    }


def ingest_hashes(svc: Service, total: int, per_request: int) -> dict[str, Any]:
    session = requests.Session()
    started = time.perf_counter()
    ids: list[str] = []
    for start in range(0, total, per_request):
        items = [
            {
                "sha256": "0x" + hashlib.sha256(f"{uuid.uuid4()}".encode()).hexdigest(),
                "kind": "salary_statement",
                "candidate_ref": f"c{i % 100}",
            }
            for i in range(start, min(total, start + per_request))
        ]
        r = session.post(
            svc.base + "/v1/documents/hashes",
            headers=svc.headers,
            json={"items": items},
            timeout=300,
        )
        if r.status_code != 201:
            raise RuntimeError(f"{r.status_code}: {r.text[:200]}")
        ids += [i["id"] for i in r.json()["items"]]
    wall = time.perf_counter() - started
    return {
        "hashes": total,
        "per_request": per_request,
        "seconds": round(wall, 2),
        "hashes_per_s": round(total / wall, 1),
        "ids": ids,
    }


def time_to_proof(svc: Service, count: int, rate: float) -> dict[str, Any]:
    """Post `count` documents at `rate`/s; for each, poll until its proof is served."""
    session = requests.Session()
    waits: list[float] = []
    lock = threading.Lock()

    def follow(doc_id: str, accepted: float) -> None:
        s = requests.Session()
        while True:
            r = s.get(f"{svc.base}/v1/documents/{doc_id}/proof", headers=svc.headers, timeout=30)
            if r.status_code == 200:
                with lock:
                    waits.append(time.perf_counter() - accepted)
                return
            time.sleep(0.05)

    threads = []
    started = time.perf_counter()
    for i in range(count):
        r = session.post(
            svc.base + "/v1/documents",
            headers=svc.headers,
            data={"kind": "handover_progress", "candidate_ref": "latency"},
            files={"file": ("d.txt", os.urandom(10_240))},
            timeout=30,
        )
        accepted = time.perf_counter()
        t = threading.Thread(target=follow, args=(r.json()["id"], accepted))
        t.start()
        threads.append(t)
        time.sleep(max(0.0, started + (i + 1) / rate - time.perf_counter()))
    for t in threads:
        t.join(120)
    return {
        "documents": count,
        "rate_per_s": rate,
        "p50_s": round(pct(waits, 50), 2),
        "p95_s": round(pct(waits, 95), 2),
        "max_s": round(max(waits), 2),
    }


def wait_anchored(svc: Service, db_url: str, expected: int, timeout: float = 600) -> float:
    """Seconds until `expected` documents are anchored (watching the database)."""
    engine = sa.create_engine(db_url)
    started = time.perf_counter()
    try:
        while time.perf_counter() - started < timeout:
            with engine.connect() as conn:
                done = conn.execute(
                    sa.text(  # a document is anchored when its batch is
                        "SELECT coalesce(sum(leaf_count), 0) FROM batches WHERE state = 'anchored'"
                    )
                ).scalar()
            if done is not None and done >= expected:
                return time.perf_counter() - started
            time.sleep(0.05)
    finally:
        engine.dispose()
    raise RuntimeError(f"only {done} of {expected} anchored in {timeout}s")


def service_gas(db_url: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT leaf_count, gas_used FROM batches WHERE state='anchored' ORDER BY id")
        ).all()
    engine.dispose()
    return [{"leaves": r[0], "gas": r[1]} for r in rows]


def gas_per_document(rpc_url: str) -> list[dict[str, Any]]:
    w3 = chain.connect(rpc_url)
    signer = chain.account(ANVIL_DEV_KEY)
    registry = RegistryClient(
        w3, chain.deploy(w3, signer, "EvidenceRegistry", signer.address, signer.address)
    )
    out = []
    for size in (1, 100, 1000, 10_000):
        leaves = [merkle.leaf_hash(os.urandom(32), os.urandom(32)) for _ in range(size)]
        started = time.perf_counter()
        tree = merkle.MerkleTree.build(leaves)
        proofs = [tree.proof(leaf) for leaf in leaves]
        build_s = time.perf_counter() - started
        prepared = registry.prepare_anchor(
            signer, tree.root, w3.eth.get_transaction_count(signer.address)
        )
        registry.send_raw(prepared.raw)
        receipt = w3.eth.wait_for_transaction_receipt(prepared.tx_hash)  # type: ignore[arg-type]
        gas = int(receipt["gasUsed"])
        out.append(
            {
                "batch": size,
                "gas": gas,
                "gas_per_doc": round(gas / size, 1),
                "tree_and_proofs_ms": round(build_s * 1000, 1),
                "max_proof_len": max(len(p) for p in proofs),
            }
        )
    return out


def agreements_through_api(svc: Service, count: int, clients: int) -> dict[str, Any]:
    """Agreements offered, signed (typed data from the API, signed with eth-account as a
    wallet would) and committed through the API: the relay included."""
    from offerseal.shared import chain as chain_mod

    keys = [hashlib.sha256(f"candidate-{i}".encode()).hexdigest() for i in range(count)]
    now = dt.datetime.now(dt.UTC)

    def one(i: int) -> float:
        started = time.perf_counter()
        candidate = chain_mod.account("0x" + keys[i])
        r = requests.post(
            svc.contracts + "/v1/agreements",
            headers={**svc.headers, "Prefer": "wait=60"},  # the old synchronous answer
            timeout=120,
            json={
                "candidate_ref": f"c{i}",
                "candidate_address": candidate.address,
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
            },
        )
        if r.status_code != 201:
            raise RuntimeError(r.text[:300])
        agreement = r.json()
        typed = requests.get(agreement["signing_link"], timeout=60).json()
        signature = chain_mod.sign_typed_data("0x" + keys[i], typed)
        token = agreement["signing_link"].split("token=")[1]
        s = requests.post(
            f"{svc.contracts}/v1/agreements/{agreement['id']}/signature",
            params={"token": token},
            json={"signature": "0x" + signature.hex()},
            timeout=120,
        )
        if s.status_code != 200 or s.json()["state"] != "committed":
            raise RuntimeError(s.text[:300])
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        latencies = list(pool.map(one, range(count)))
    wall = time.perf_counter() - started
    return {
        "agreements": count,
        "clients": clients,
        "seconds": round(wall, 2),
        "agreements_per_s": round(count / wall, 2),
        "p50_s": round(pct(latencies, 50), 3),
        "p99_s": round(pct(latencies, 99), 3),
    }


def batched_vs_naive(
    rpc_url: str, count: int, designs: tuple[str, ...] = ("batched", "naive")
) -> dict[str, Any]:
    """The batched design vs the naive one on the same documents: anchoring throughput with a
    backlog, the service itself configured with BATCH_MAX=1 for the naive run. `batched`
    closes its batch after the interval (1 s); `batched_when_full` as soon as the backlog
    fills it (BATCH_MAX = the number of documents): the design at its best, as the naive
    design at its best pipelines its nonces."""
    same = [hashlib.sha256(os.urandom(16)).hexdigest() for _ in range(count)]
    compare: dict[str, Any] = {}
    for label in designs:
        batch_max = {"batched": "10000", "batched_when_full": str(count)}.get(label, "1")
        db = ScratchDatabase()
        workdir = OUT / f"run-{label}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        svc = Service(
            rpc_url,
            db.url,
            workdir,
            OFFERSEAL_BATCH_MAX=batch_max,
            OFFERSEAL_BATCH_INTERVAL="1s",
        )
        try:
            print(f"{label}: anchoring {count} documents ...", flush=True)
            started = time.perf_counter()
            r = requests.post(
                svc.base + "/v1/documents/hashes",
                headers=svc.headers,
                timeout=300,
                json={
                    "items": [
                        {"sha256": "0x" + s, "kind": "other", "candidate_ref": "same"} for s in same
                    ]
                },
            )
            assert r.status_code == 201, r.text
            wait_anchored(svc, db.url, count, timeout=1800)
            seconds = time.perf_counter() - started
            gas = service_gas(db.url)
            compare[label] = {
                "documents": count,
                "seconds": round(seconds, 2),
                "docs_per_s": round(count / seconds, 1),
                "transactions": len(gas),
                "gas_per_doc": round(sum(g["gas"] for g in gas) / count, 1),
            }
        finally:
            svc.stop()
            db.drop()
    if "naive" in compare:
        compare["ratio_docs_per_s"] = round(
            compare["batched"]["docs_per_s"] / compare["naive"]["docs_per_s"], 1
        )
    return compare


def throughput(rpc_url: str, args: argparse.Namespace) -> dict[str, Any]:
    """bench/ingest.py's figures: HTTP ingest against the ceiling for 1 and N worker processes,
    hash-only intake, anchoring batched against the naive design at its best."""
    from bench import ingest

    workers = tuple(int(w) for w in args.workers.split(","))
    out: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    parts = set(args.parts.split(",") if args.parts else INGEST_PARTS)
    if "http" in parts:
        print(f"HTTP ingest vs the ceiling, workers {workers} ...", flush=True)
        out["http"] = ingest.http_ingest(
            rpc_url, OUT, args.docs, workers, 16, Service, ScratchDatabase, wait_anchored
        )
    if "hashes" in parts:
        print(f"hash-only intake of {args.hashes}, workers {workers} ...", flush=True)
        out["hashes"] = ingest.hash_ingest(
            rpc_url, OUT, args.hashes, 10_000, workers, Service, ScratchDatabase, wait_anchored
        )
    if "anchoring" not in parts:
        return out
    print(f"anchoring {args.naive}: the naive design at its best ...", flush=True)
    # A backlog of `--naive` documents (a backlog of 10,000 made Anvil itself the bottleneck of
    # the naive run: minutes at full CPU and 8 GB, so it is not measured).
    out["baselines"] = []
    for count in (args.naive,):
        print(f"anchoring {count}: the naive design at its best, batched ...", flush=True)
        at_best = ingest.anchoring_at_best(rpc_url, count)
        batched = batched_vs_naive(rpc_url, count, ("batched", "batched_when_full"))
        out["baselines"].append(
            {
                "at_best": at_best,
                "service_batched": batched["batched"],
                "service_batched_when_full": batched["batched_when_full"],
            }
        )
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=4000, help="10 KB documents over HTTP")
    parser.add_argument("--hashes", type=int, default=100_000, help="hash-only intake")
    parser.add_argument("--naive", type=int, default=1000, help="documents for the naive run")
    parser.add_argument(
        "--planned",
        type=int,
        default=1_000_000,
        help="planned touchpoints for the notify claim benchmark",
    )
    parser.add_argument(
        "--agreements",
        type=int,
        default=100,
        help="agreements offered and committed through the API",
    )
    parser.add_argument(
        "--workers",
        default="1,2,3",
        help="worker process counts for the intake figures (comma-separated)",
    )
    parser.add_argument(
        "--only",
        choices=["ingest"],
        help="run only these figures (ingest: bench/ingest.py; its RESULTS.md section only)",
    )
    parser.add_argument(
        "--parts",
        help="with --only ingest: only these of its figures (comma-separated: http, hashes, "
        "anchoring); printed and written to bench/out/ingest-<parts>.json, RESULTS.md left as "
        "it is",
    )
    args = parser.parse_args()
    if args.parts and args.only != "ingest":
        parser.error("--parts needs --only ingest")
    unknown = set((args.parts or "http").split(",")) - set(INGEST_PARTS)
    if unknown:
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    OUT.mkdir(parents=True, exist_ok=True)
    if args.only == "ingest":
        from bench import ingest

        anvil = AnvilProcess(free_port())
        try:
            found = throughput(anvil.url, args)
        finally:
            anvil.stop()
        if args.parts:
            name = "-".join(args.parts.split(","))
            (OUT / f"ingest-{name}.json").write_text(json.dumps(found, indent=2))
            print(json.dumps(found, indent=2))
            return 0
        (OUT / "ingest.json").write_text(json.dumps(found, indent=2))
        ingest.write_section(found)
        print(json.dumps(found, indent=2))
        return 0
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
    }
    anvil = AnvilProcess(free_port())
    try:
        print("gas per document by batch size ...", flush=True)
        results["gas"] = gas_per_document(anvil.url)
        print("gas per intent agreement: registry vs one contract per agreement ...", flush=True)
        results["agreement_gas"] = agreement_gas(anvil.url)
        print("the candidate's portal: passkey gas, signing round trip, first load ...", flush=True)
        from bench import portal_bench

        results["portal"] = portal_bench.run(anvil.url)

        db = ScratchDatabase()
        workdir = OUT / f"run-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        svc = Service(anvil.url, db.url, workdir)
        try:
            docs = [os.urandom(10_240) for _ in range(args.docs)]
            print(f"HTTP ingest of {args.docs} x 10 KB, 8 clients ...", flush=True)
            http = ingest_http(svc, docs, clients=8)
            anchor_wait = wait_anchored(svc, db.url, args.docs)
            results["http_ingest"] = {k: v for k, v in http.items() if k != "ids"}
            results["http_ingest"]["all_anchored_after_s"] = round(anchor_wait, 2)
            print(f"hash-only intake of {args.hashes} ...", flush=True)
            hashes = ingest_hashes(svc, args.hashes, 10_000)
            results["hash_ingest"] = {k: v for k, v in hashes.items() if k != "ids"}
            wait_anchored(svc, db.url, args.docs + args.hashes)
            print("time from 201 to proof ...", flush=True)
            results["time_to_proof"] = time_to_proof(svc, 100, rate=20)
            results["service_batches"] = service_gas(db.url)
        finally:
            svc.stop()
            db.drop()

        db = ScratchDatabase()
        workdir = OUT / f"run-agreements-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        svc = Service(anvil.url, db.url, workdir, ("evidence", "contracts"))
        try:
            print("agreements offered and committed through the API ...", flush=True)
            results["agreements_api"] = agreements_through_api(svc, args.agreements, clients=4)
        finally:
            svc.stop()
            db.drop()

        print("notify: claiming among 1,000,000 planned, dispatch rate, lateness ...", flush=True)
        from bench import notify_bench

        results["notify"] = notify_bench.run(PG_ADMIN, planned=args.planned)

        results["batched_vs_naive"] = batched_vs_naive(anvil.url, args.naive)
        results["throughput"] = throughput(anvil.url, args)
    finally:
        anvil.stop()
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    write_markdown(results)
    if "portal" in results:
        from bench import portal_bench

        portal_bench.write_section(results["portal"])
    if "throughput" in results:
        from bench import ingest

        ingest.write_section(results["throughput"])
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
