"""`make soak`: mixed load without faults for a while, watching for growth.

The stack of `make chaos` (one `offerseal serve` process, private PostgreSQL and RabbitMQ
servers, Anvil, aiosmtpd) takes documents, offers and signatures for `--seconds` (default
30 minutes). At the start, every `--interval` (default 5 minutes) and at the end it records the
service process's memory (RSS) and open file descriptors, the database connections and the
broker's connections and channels (the first sample after `--warmup`, default a minute, when
the pools are filled); and, per interval, each path's p95 latency. Written to
bench/SOAK.md. Growth between start and end is a finding (a leak), not a number to report.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.pool import NullPool

from bench import chaos
from bench.figures import machine
from bench.invariants import BAD
from bench.load import PATHS

ROOT = Path(__file__).resolve().parents[1]


def _proc(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kib = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
    threads = next(
        int(line.split()[1]) for line in status.splitlines() if line.startswith("Threads")
    )
    return {
        "rss_mib": rss_kib // 1024,
        "open_fds": len(os.listdir(f"/proc/{pid}/fd")),
        "threads": threads,
    }


def _count_lines(rabbit: Any, what: str) -> int:
    done = subprocess.run(
        ["rabbitmqctl", "-n", rabbit.node, "-q", "--no-table-headers", what, "pid"],
        env=rabbit.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return len([line for line in done.stdout.splitlines() if line.strip()])


def sample(watched: chaos.Observed) -> dict[str, Any]:
    process = watched.service.process
    assert process is not None
    row: dict[str, Any] = {"at": time.time(), **_proc(process.pid)}
    engine = sa.create_engine(watched.database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            row["db_connections"] = int(
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": watched.database_name},
                ).scalar_one()
                - 1  # this one
            )
    finally:
        engine.dispose()
    rabbit = watched.servers.get("rabbitmq")
    if rabbit is not None:
        row["broker_connections"] = _count_lines(rabbit, "list_connections")
        row["broker_channels"] = _count_lines(rabbit, "list_channels")
    return row


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]


def write(samples: list[dict[str, Any]], result: dict[str, Any], interval: float) -> str:
    start, end = samples[0], samples[-1]
    metrics = [k for k in start if k != "at"]
    lines = [
        "# Soak run",
        "",
        f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {machine()}, `make soak`: "
        f"{result['fault_seconds']:g} s of documents, "
        f"offers and signatures ({result['agreement_clients']} agreement clients) without "
        "faults on one `offerseal serve` process, private PostgreSQL and RabbitMQ, Anvil; "
        f"the start is sampled after a warm-up of {result['quiet_seconds']:g} s.",
        "",
        "| what | start | end | change |",
        "|---|---|---|---|",
    ]
    for name in metrics:
        a, b = start[name], end[name]
        lines.append(f"| {name} | {a} | {b} | {b - a:+d} |")
    # Every sample, so growth can be told from warm-up: a curve that levels off is a cache
    # filling up, one that keeps climbing is a leak.
    lines += ["", "## Every sample (seconds after the start)", ""]
    lines += ["| at | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for taken in samples:
        cells = " | ".join(str(taken[name]) for name in metrics)
        lines.append(f"| {taken['at'] - start['at']:.0f} | {cells} |")
    lines += ["", f"## p95 latency per path per {interval:g} s (seconds; count)", ""]
    began = start["at"]
    buckets = max(1, int((end["at"] - began) // interval) + 1)
    paths = [p for p in PATHS if result["latency"].get(p)]
    lines += ["| interval | " + " | ".join(paths) + " |", "|---|" + "---|" * len(paths)]
    for i in range(buckets):
        lo, hi = began + i * interval, began + (i + 1) * interval
        cells = []
        for path in paths:
            took = [s for t, s in result["latency"][path] if lo <= t < hi]
            cells.append(f"{_p95(took):.3f} ({len(took)})" if took else "-")
        lines.append(f"| {i * interval:g}-{(i + 1) * interval:g} s | " + " | ".join(cells) + " |")
    counts = {k: result[k] for k in ("documents_201", "agreements_offered", "signatures_accepted")}
    lines += ["", f"Counts: {json.dumps(counts)}; losses or duplicates: "]
    lines[-1] += "none." if all(result[k] == 0 for k in BAD) else "SOME (see chaos checks)."
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1800)
    parser.add_argument("--interval", type=float, default=300)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument(
        "--warmup", type=float, default=60, help="seconds of load before the first sample"
    )
    parser.add_argument("--no-write", action="store_true", help="do not write bench/SOAK.md")
    args = parser.parse_args(argv)
    samples: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="offerseal-soak-") as tmp:
        result = chaos.run(
            args.seconds,
            (),
            0.0,
            Path(tmp),
            quiet_seconds=args.warmup,
            clients=args.clients,
            private_servers=True,
            observe=lambda watched: samples.append(sample(watched)),
            observe_every=args.interval,
        )
    text = write(samples, result, args.interval)
    print(text)
    if not args.no_write:
        (ROOT / "bench" / "SOAK.md").write_text(text)
    return 0 if all(result[k] == 0 for k in BAD) else 1


if __name__ == "__main__":
    raise SystemExit(main())
