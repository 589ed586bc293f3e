"""Intake throughput (issue 13, sections 1 and 3): HTTP ingest of 10 KB documents against this
machine's ceiling (a bare Flask endpoint on the same server reading the same upload), for one
process and for several worker processes; hash-only intake; anchoring batched against the naive
design (one transaction per document) at its best: signed with consecutive nonces, all sent
without waiting, then every receipt awaited without a polling delay.

Part of `make bench`; alone: `.venv/bin/python -m bench.run --only ingest` (it writes its
section at the top of bench/RESULTS.md and bench/out/ingest.json). Only some of its figures,
printed and not written: `--parts http` (or `hashes`, `anchoring`, comma-separated).
"""

from __future__ import annotations

import hashlib
import http.client
import itertools
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.figures import pct
from offerseal.shared.net import free_port

ROOT = Path(__file__).resolve().parents[1]
START = "<!-- throughput:start -->"
END = "<!-- throughput:end -->"
DOC_BYTES = 10_240


def multipart(content: bytes) -> tuple[bytes, str]:
    """The upload the bench sends: two form fields and the file, as a browser or `requests`
    would encode them."""
    boundary = uuid.uuid4().hex
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="kind"\r\n\r\nresignation_application\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="candidate_ref"\r\n\r\nbench\r\n'
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="doc.pdf"\r\n'
        "Content-Type: application/pdf\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


def blast(
    port: int,
    path: str,
    bodies: list[tuple[bytes, str]],
    headers: dict[str, str],
    clients: int,
) -> dict[str, Any]:
    """POST every body (prepared beforehand, so the client spends little CPU) over `clients`
    kept-alive connections; every answer must be 201."""
    counter = itertools.count()
    latencies: list[float] = []
    pids: dict[str, int] = {}
    failures: list[str] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        mine: list[float] = []
        seen: dict[str, int] = {}
        try:
            while True:
                i = next(counter)
                if i >= len(bodies):
                    break
                body, content_type = bodies[i]
                started = time.perf_counter()
                conn.request("POST", path, body, {**headers, "Content-Type": content_type})
                response = conn.getresponse()
                data = response.read()
                mine.append(time.perf_counter() - started)
                if response.status != 201:
                    failures.append(f"{response.status}: {data[:200]!r}")
                    return
                pid = response.getheader("OfferSeal-Process") or "-"
                seen[pid] = seen.get(pid, 0) + 1
        finally:
            conn.close()
            with lock:
                latencies.extend(mine)
                for pid, n in seen.items():
                    pids[pid] = pids.get(pid, 0) + n

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    if failures:
        raise RuntimeError(failures[0])
    return {
        "documents": len(bodies),
        "clients": clients,
        "seconds": round(wall, 2),
        "docs_per_s": round(len(bodies) / wall, 1),
        "p50_ms": round(pct(latencies, 50) * 1000, 1),
        "p99_ms": round(pct(latencies, 99) * 1000, 1),
        "answered_by": sorted(pids.values(), reverse=True),
    }


class Ceiling:
    """bench/ceiling.py in its own process."""

    def __init__(self, workers: int, workdir: Path) -> None:
        self.port = free_port()
        self.log = (workdir / f"ceiling-{workers}.log").open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bench.ceiling",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
            ],
            cwd=ROOT,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_processes(f"http://127.0.0.1:{self.port}", workers, key="pid")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)
        self.log.close()


def wait_processes(base: str, workers: int, key: str = "", timeout: float = 120.0) -> None:
    """Until /healthz answered 200 from `workers` distinct processes (fresh connections)."""
    seen: set[Any] = set()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            r = requests.get(base + "/healthz", timeout=5)
        except requests.RequestException:
            time.sleep(0.1)
            continue
        if r.status_code == 200:
            body = r.json()
            seen.add(body[key] if key else body["checks"].get("process", {}).get("pid", 0))
            if len(seen) >= workers:
                return
        else:
            time.sleep(0.1)
    raise RuntimeError(f"{base}: only {len(seen)} of {workers} processes healthy")


def cpu_seconds() -> dict[str, float]:
    """CPU seconds used so far by each kind of process on this machine (from /proc): the
    service's processes, PostgreSQL, this bench process (the load), Anvil, RabbitMQ, other."""
    tick = os.sysconf("SC_CLK_TCK")
    me = os.getpid()
    out: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        used = (int(fields[11]) + int(fields[12])) / tick  # utime + stime
        if int(entry.name) == me:
            kind = "bench client"
        elif "offerseal.cli serve" in cmdline or "bench.ceiling" in cmdline:
            kind = "service"
        elif comm.startswith("postgres"):
            kind = "PostgreSQL"
        elif "anvil" in comm:
            kind = "Anvil"
        elif "beam" in comm:
            kind = "RabbitMQ"
        else:
            kind = "other processes"
        out[kind] = out.get(kind, 0.0) + used
    return out


def cpu_per_document(
    before: dict[str, float], after: dict[str, float], docs: int
) -> dict[str, float]:
    return {
        kind: round((after[kind] - before.get(kind, 0.0)) / docs * 1000, 2)
        for kind in after
        if after[kind] - before.get(kind, 0.0) > 0
    }


def documents(count: int) -> list[tuple[bytes, str]]:
    return [multipart(os.urandom(DOC_BYTES)) for _ in range(count)]


def http_ingest(
    rpc_url: str,
    out: Path,
    docs: int,
    workers_list: tuple[int, ...],
    clients: int,
    service_factory: Any,
    database_factory: Any,
    wait_anchored: Any,
) -> list[dict[str, Any]]:
    """For each worker count: the ceiling, then the evidence service, same load."""
    rows = []
    warmup = documents(200)
    for workers in workers_list:
        bodies = documents(docs)
        ceiling = Ceiling(workers, out)
        try:
            blast(ceiling.port, "/v1/documents", warmup, {}, clients)
            before = cpu_seconds()
            top = blast(ceiling.port, "/v1/documents", bodies, {}, clients)
            top["cpu_ms_per_doc"] = cpu_per_document(before, cpu_seconds(), docs)
        finally:
            ceiling.stop()
        db = database_factory()
        workdir = out / f"run-ingest-{workers}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        svc = service_factory(rpc_url, db.url, workdir, workers=workers)
        try:
            wait_processes(svc.base, workers)
            port = int(svc.base.rsplit(":", 1)[1])
            blast(port, "/v1/documents", warmup, svc.headers, clients)
            before = cpu_seconds()
            ours = blast(port, "/v1/documents", bodies, svc.headers, clients)
            ours["cpu_ms_per_doc"] = cpu_per_document(before, cpu_seconds(), docs)
            ours["all_anchored_after_s"] = round(wait_anchored(svc, db.url, docs + len(warmup)), 2)
        finally:
            svc.stop()
            db.drop()
        rows.append(
            {
                "workers": workers,
                "ceiling": top,
                "evidence": ours,
                "ratio": round(ours["docs_per_s"] / top["docs_per_s"], 2),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def hash_bodies(total: int, per_request: int) -> list[bytes]:
    out = []
    for start in range(0, total, per_request):
        items = [
            {
                "sha256": "0x" + hashlib.sha256(os.urandom(16)).hexdigest(),
                "kind": "salary_statement",
                "candidate_ref": f"c{i % 100}",
            }
            for i in range(start, min(total, start + per_request))
        ]
        out.append(json.dumps({"items": items}).encode())
    return out


def hash_ingest(
    rpc_url: str,
    out: Path,
    total: int,
    per_request: int,
    workers_list: tuple[int, ...],
    service_factory: Any,
    database_factory: Any,
    wait_anchored: Any,
) -> list[dict[str, Any]]:
    """Hash-only intake, `per_request` hashes a request; one client per worker process."""
    rows = []
    for workers in workers_list:
        bodies = [(b, "application/json") for b in hash_bodies(total, per_request)]
        db = database_factory()
        workdir = out / f"run-hashes-{workers}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir()
        svc = service_factory(rpc_url, db.url, workdir, workers=workers)
        try:
            wait_processes(svc.base, workers)
            port = int(svc.base.rsplit(":", 1)[1])
            result = blast(port, "/v1/documents/hashes", bodies, svc.headers, workers)
            wait_anchored(svc, db.url, total)
        finally:
            svc.stop()
            db.drop()
        rows.append(
            {
                "workers": workers,
                "hashes": total,
                "per_request": per_request,
                "clients": workers,
                "seconds": result["seconds"],
                "hashes_per_s": round(total / result["seconds"], 1),
            }
        )
        print(json.dumps(rows[-1]), flush=True)
    return rows


def anchoring_at_best(rpc_url: str, count: int) -> dict[str, Any]:
    """Chain work only, no service and no database: `count` documents anchored one transaction
    each (the naive design) with consecutive nonces, all signed, all sent, then every receipt
    awaited without a polling delay; against one tree of all of them in one transaction."""
    from offerseal.evidence.adapters.registry import RegistryClient
    from offerseal.shared import chain
    from offerseal.shared.config import ANVIL_DEV_KEY
    from offerseal_verify import merkle

    w3 = chain.connect(rpc_url, timeout=60)
    signer = chain.account(ANVIL_DEV_KEY)
    registry = RegistryClient(
        w3, chain.deploy(w3, signer, "EvidenceRegistry", signer.address, signer.address)
    )
    chain_id = int(w3.eth.chain_id)
    fees = chain.suggested_fees(w3)
    leaves = [merkle.leaf_hash(os.urandom(32), os.urandom(32)) for _ in range(count)]

    def signed(root: bytes, nonce: int) -> tuple[bytes, str]:
        tx = registry.functions.anchor(root).build_transaction(
            {
                "from": signer.address,
                "nonce": nonce,
                "gas": 120_000,
                "chainId": chain_id,
                **fees,
            }
        )
        s = signer.sign_transaction(tx)
        return bytes(s.raw_transaction), s.hash.to_0x_hex()

    def receipts(hashes: list[str]) -> int:
        gas = 0
        for h in hashes:
            while True:
                try:
                    receipt = w3.eth.get_transaction_receipt(h)  # type: ignore[arg-type]
                except Exception:  # not mined yet: ask again at once
                    continue
                if receipt is not None:
                    assert receipt["status"] == 1
                    gas += int(receipt["gasUsed"])
                    break
        return gas

    # naive, pipelined
    nonce = w3.eth.get_transaction_count(signer.address)
    naive_started = started = time.perf_counter()
    txs = [signed(leaf, nonce + i) for i, leaf in enumerate(leaves)]
    signed_at = time.perf_counter()
    for raw, _ in txs:
        w3.eth.send_raw_transaction(raw)
    sent_at = time.perf_counter()
    naive_gas = receipts([h for _, h in txs])
    naive_s = time.perf_counter() - started

    # batched: one tree, every proof, one transaction
    started = time.perf_counter()
    tree = merkle.MerkleTree.build(leaves)
    for leaf in leaves:
        tree.proof(leaf)
    raw, tx_hash = signed(tree.root, w3.eth.get_transaction_count(signer.address))
    w3.eth.send_raw_transaction(raw)
    batched_gas = receipts([tx_hash])
    batched_s = time.perf_counter() - started
    return {
        "documents": count,
        "naive_pipelined": {
            "transactions": count,
            "seconds": round(naive_s, 2),
            "sign_s": round(signed_at - naive_started, 2),
            "send_s": round(sent_at - signed_at, 2),
            "docs_per_s": round(count / naive_s, 1),
            "gas_per_doc": round(naive_gas / count, 1),
        },
        "batched_chain_only": {
            "transactions": 1,
            "seconds": round(batched_s, 3),
            "docs_per_s": round(count / batched_s, 1),
            "gas_per_doc": round(batched_gas / count, 1),
        },
    }


def markdown(r: dict[str, Any]) -> str:
    mark = lambda ok: "met" if ok else "**not met**"  # noqa: E731
    http_rows = r["http"]
    best = max(http_rows, key=lambda row: row["evidence"]["docs_per_s"])
    hashes = max(r["hashes"], key=lambda row: row["hashes_per_s"])
    baselines = r.get("baselines") or [{k: r[k] for k in ("at_best", "service_batched") if k in r}]

    def ratio(b: dict[str, Any], key: str) -> float:
        return round(b[key]["docs_per_s"] / b["at_best"]["naive_pipelined"]["docs_per_s"], 1)

    def full(b: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = b.get("service_batched_when_full", b["service_batched"])
        return found

    best_baseline = max(baselines, key=lambda b: ratio(b, "service_batched_when_full"))
    lines = [
        START,
        f"## Intake throughput: worker processes, the ceiling, honest baselines ({r['date'][:10]})",
        "",
        f"Measured {r['date']} on {r['machine']} by `python -m bench.run --only ingest` "
        "(`bench/ingest.py`; also part of `make bench`): PostgreSQL, RabbitMQ and Anvil on this "
        "machine, `offerseal serve evidence --workers N` as its own process, the load from the "
        "bench process (16 kept-alive connections, every body prepared before the clock "
        "starts). The ceiling is `bench/ceiling.py`: a bare Flask endpoint that only reads the "
        "same 10 KB multipart upload and answers 201, on the same server (one process: waitress, "
        "16 threads, as `offerseal serve`; N processes: gunicorn gthread, the same settings as "
        "`offerseal serve --workers N`). Raw: `bench/out/ingest.json`.",
        "",
        "| worker processes | ceiling (bare Flask) | evidence service | ratio | p50 / p99 | "
        "answered by (requests per process) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {row['workers']} | {row['ceiling']['docs_per_s']} docs/s | "
            f"{row['evidence']['docs_per_s']} docs/s | {row['ratio']} | "
            f"{row['evidence']['p50_ms']} / {row['evidence']['p99_ms']} ms | "
            f"{', '.join(str(n) for n in row['evidence']['answered_by'])} |"
            for row in http_rows
        ],
        "",
        "| hash-only intake (10,000 per request) | hashes/s |",
        "|---|---|",
        *[
            f"| {row['workers']} worker process(es), {row['clients']} client(s) | "
            f"{row['hashes_per_s']} |"
            for row in r["hashes"]
        ],
        "",
        "| figure | result | target | |",
        "|---|---|---|---|",
        f"| HTTP ingest, 10 KB documents (best: {best['workers']} worker processes) | "
        f"{best['evidence']['docs_per_s']} docs/s | >= 1,000 docs/s | "
        f"{mark(best['evidence']['docs_per_s'] >= 1000)} |",
        f"| HTTP ingest / ceiling, same server ({best['workers']} worker processes) | "
        f"{best['ratio']} | >= 0.5 | {mark(best['ratio'] >= 0.5)} |",
        f"| hash-only batch ingest ({hashes['workers']} worker processes) | "
        f"{hashes['hashes_per_s']} hashes/s | >= 20,000 hashes/s | "
        f"{mark(hashes['hashes_per_s'] >= 20000)} |",
        *[
            f"| batched at its best (through the service, the batch closed when the backlog "
            f"fills it) vs naive at its best (pipelined nonces), anchoring "
            f"{b['at_best']['documents']} documents | {full(b)['docs_per_s']} vs "
            f"{b['at_best']['naive_pipelined']['docs_per_s']} docs/s = "
            f"**{ratio(b, 'service_batched_when_full')}x** | >= 20x | "
            f"{mark(ratio(b, 'service_batched_when_full') >= 20)} |"
            for b in baselines
        ],
        "",
        "Anchoring a backlog, the naive design at its best: one anchor transaction per "
        "document, signed with consecutive nonces, all sent without waiting, then every receipt "
        "awaited without a polling delay (chain work only, no service or database). The "
        "batched design through the service: hash-only intake of the same number of documents, "
        "until every one is anchored, with `OFFERSEAL_BATCH_MAX` equal to the backlog (the batch "
        "closes as soon as the backlog fills it) and, for comparison, closed by "
        "`OFFERSEAL_BATCH_INTERVAL=1s`. Anvil mines at once here and has no block limit that "
        "binds; on a real chain the naive design is also bounded by gas per block (about 48,000 "
        "gas per document).",
        "",
        "| documents | naive: sign / send / all receipts | naive docs/s, gas per document | "
        "batched when full | batched by its 1 s interval | gas per document (batched) |",
        "|---|---|---|---|---|---|",
        *[
            f"| {b['at_best']['documents']} | {b['at_best']['naive_pipelined']['sign_s']} / "
            f"{b['at_best']['naive_pipelined']['send_s']} / "
            f"{b['at_best']['naive_pipelined']['seconds']} s | "
            f"{b['at_best']['naive_pipelined']['docs_per_s']}, "
            f"{b['at_best']['naive_pipelined']['gas_per_doc']} | "
            f"{full(b)['seconds']} s, {full(b)['docs_per_s']} docs/s "
            f"(**{ratio(b, 'service_batched_when_full')}x**) | "
            f"{b['service_batched']['seconds']} s, {b['service_batched']['docs_per_s']} docs/s "
            f"({ratio(b, 'service_batched')}x) | {full(b)['gas_per_doc']} |"
            for b in baselines
        ],
        "",
        f"The best ratio, {ratio(best_baseline, 'service_batched_when_full')}x, is at "
        f"{best_baseline['at_best']['documents']} documents. The earlier naive figure, 7.1 "
        "docs/s (one transaction per document through the service with `OFFERSEAL_BATCH_MAX=1`, "
        "each receipt polled; 104.8x), measured on 2026-11-25, was slowed by receipt polling, "
        "not by the design.",
        "",
        END,
    ]
    return "\n".join(lines)


def write_section(results: dict[str, Any]) -> None:
    """The section at the top of bench/RESULTS.md (after its title), replacing an earlier one."""
    path = ROOT / "bench" / "RESULTS.md"
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if START in text and END in text:
        text = text[: text.index(START)] + text[text.index(END) + len(END) :].lstrip("\n")
    title, _, rest = text.partition("\n")
    path.write_text(f"{title}\n\n{markdown(results)}\n\n{rest.lstrip(chr(10))}")
