"""Where the time of one hash-only intake request goes (10,000 hashes, as `bench/ingest.py`'s
`hash_ingest` sends them): the evidence app on PostgreSQL called as WSGI without a server or a
network, under cProfile; then the anchoring worker's batch of the same documents (`prepare`,
which builds the tree and stores every proof, and `finalize`), also profiled. The requests are
prepared before the clock starts.

Run: `.venv/bin/python -m bench.profile_hashes [--requests N]` (prints the wall time of a
request with and without the profiler, the top functions, and a grouping by layer; `--out
FILE` keeps the raw profiles for `python -m pstats`: FILE for the requests' threads, FILE's
name with `.writer` for the group-commit thread, with `.anchoring` for the anchoring).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from werkzeug.test import EnvironBuilder

from bench.ingest import hash_bodies
from bench.profile_upload import group_of
from harness.procs import ScratchDatabase
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.config import ANVIL_DEV_KEY, load_settings
from offerseal.shared.net import free_port
from offerseal.stack import Stack, open_database

PER_REQUEST = 10_000


def report(profiler: cProfile.Profile, title: str, per: int, top: int) -> None:
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    groups: dict[str, float] = {}
    for (filename, _line, _name), value in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename)] = groups.get(group_of(filename), 0.0) + value[2]
    print(f"\n== {title}: own time by layer (ms each)")
    for label, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / per * 1000:8.2f}  {100 * seconds / total:5.1f}%  {label}")
    for order in ("cumulative", "tottime"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(top)
        print(out.getvalue())


def time_statements(engine: Any) -> dict[str, float]:
    """Each statement's wall time from here on, summed by its first 90 characters."""
    totals: dict[str, float] = {}

    @event.listens_for(engine, "before_cursor_execute")
    def before(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        conn.info["started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def after(conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        key = " ".join(statement.split())[:90]
        totals[key] = totals.get(key, 0.0) + time.perf_counter() - conn.info.pop("started")

    return totals


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=6, help="of 10,000 hashes each")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--no-anchor", action="store_true", help="skip the anchoring profile")
    args = parser.parse_args()
    anvil = AnvilProcess(free_port())
    db = ScratchDatabase()
    data_dir = Path(tempfile.mkdtemp(prefix="offerseal-profile-"))
    try:
        settings = load_settings(
            {
                "OFFERSEAL_DATA_DIR": str(data_dir),
                "OFFERSEAL_DATABASE_URL": db.url,
                "OFFERSEAL_RPC_URL": anvil.url,
                "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
                "OFFERSEAL_LOG_LEVEL": "WARNING",
            }
        )
        from offerseal.shared.auth import create_key

        store = open_database(settings)
        _, token = create_key(store, "hr", "bench", "profile")
        store.dispose()
        stack = Stack(settings, ("evidence",), http=False, background=False).start()
        app = stack.apps["evidence"]
        bodies = hash_bodies(PER_REQUEST * (2 + 2 * args.requests), PER_REQUEST)
        environs = [
            EnvironBuilder(
                path="/v1/documents/hashes",
                method="POST",
                data=body,
                content_type="application/json",
                headers={"Authorization": f"Bearer {token}"},
            ).get_environ()
            for body in bodies
        ]
        statuses: list[str] = []

        def start_response(status: str, headers: Any, *exc: Any) -> None:
            statuses.append(status)

        def call(environ: dict[str, Any]) -> None:
            for chunk in app(environ, start_response):
                del chunk

        # The writes run on the group-commit thread: profiled there too, into `writer`.
        group = stack.evidence.service.group
        writer = cProfile.Profile()
        profiling = threading.Event()
        if group is not None:
            commit = group._commit

            def profiled(pieces: list[Any]) -> None:
                if not profiling.is_set():
                    return commit(pieces)
                writer.enable()
                try:
                    return commit(pieces)
                finally:
                    writer.disable()

            group._commit = profiled  # type: ignore[method-assign]
        for environ in environs[:2]:  # warm-up: caches, connections, the key's lookup
            call(environ)
        bare = environs[2 : 2 + args.requests]
        started, cpu = time.perf_counter(), time.process_time()
        for environ in bare:
            call(environ)
        unprofiled = (time.perf_counter() - started) / len(bare)
        unprofiled_cpu = (time.process_time() - cpu) / len(bare)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiling.set()
        profiler.enable()
        for environ in environs[2 + args.requests :]:
            call(environ)
        profiler.disable()
        profiling.clear()
        wall = (time.perf_counter() - started) / args.requests
        assert all(s.startswith("201") for s in statuses), set(statuses)
        print(
            f"one request of {PER_REQUEST} hashes, one thread, no profiler: "
            f"{unprofiled * 1000:.0f} ms ({PER_REQUEST / unprofiled:.0f} hashes/s), of which "
            f"this process's CPU {unprofiled_cpu * 1000:.0f} ms; under the profiler: "
            f"{wall * 1000:.0f} ms"
        )
        if args.out:
            profiler.dump_stats(args.out)
            writer.dump_stats(args.out.with_suffix(".writer" + args.out.suffix))
        report(profiler, "intake request (the request's thread)", args.requests, args.top)
        if group is not None:
            report(writer, "intake request (the group-commit thread)", args.requests, args.top)
        if not args.no_anchor:
            anchorer = stack.evidence.anchorer
            anchorer.connect()
            anchorer.recover()
            statements = time_statements(anchorer.db.engine)
            anchored = cProfile.Profile()
            started = time.perf_counter()
            anchored.enable()
            batches = 0
            while anchorer.run_once() is not None:
                batches += 1
            anchored.disable()
            took = time.perf_counter() - started
            print(
                f"\nanchoring {len(environs) * PER_REQUEST} documents in {batches} batches "
                f"under the profiler: {took:.2f} s ({took / batches * 1000:.0f} ms a batch)"
            )
            if args.out:
                anchored.dump_stats(args.out.with_suffix(".anchoring" + args.out.suffix))
            report(anchored, "anchoring batch", batches, args.top)
            print("== anchoring batch: wall time of each statement (ms a batch)")
            for sql, seconds in sorted(statements.items(), key=lambda kv: -kv[1])[:8]:
                print(f"  {seconds / batches * 1000:8.1f}  {sql}")
        stack.stop()
    finally:
        db.drop()
        anvil.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
