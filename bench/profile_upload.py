"""Where the milliseconds of one upload go: the evidence app (as one worker process builds it)
on PostgreSQL, called as WSGI without a server or a network, under cProfile. The requests are
prepared before the clock starts; the anchoring worker does not run. Uploads are written by the
group committer's thread (services/shared/group_commit.py): its work is profiled apart, and both
threads' own time is reported per upload.

Run: `.venv/bin/python -m bench.profile_upload [--uploads N]` (prints the top functions and a
grouping by layer; `--out FILE` keeps the raw profile for `python -m pstats`).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

from bench.ingest import multipart
from harness.procs import ScratchDatabase
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.config import ANVIL_DEV_KEY, load_settings
from offerseal.shared.net import free_port
from offerseal.stack import Stack, open_database

# Where each function's own time is counted: the first group whose marker is in its file path.
GROUPS = (
    ("PostgreSQL driver and round trips (psycopg)", "psycopg"),
    ("SQLAlchemy (ORM, Core, pool)", "sqlalchemy"),
    ("multipart parsing and request (werkzeug)", "werkzeug"),
    ("flask, flask-smorest, marshmallow (routing, schemas)", ("flask", "marshmallow", "webargs")),
    ("crypto (AES-GCM, Ed25519, hashes)", ("cryptography", "hashlib", "_sha", "Crypto")),
    ("rate limits (limits)", "limits"),
    ("OfferSeal code", ("offerseal", "/services/", "offerseal_verify")),
    ("json, uuid, datetime, stdlib", ("json", "uuid", "datetime", "python3")),
)


def group_of(filename: str) -> str:
    for label, markers in GROUPS:
        for marker in (markers,) if isinstance(markers, str) else markers:
            if marker in filename:
                return label
    return "other (built-ins)"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--uploads", type=int, default=500)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--top", type=int, default=30)
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
        environs = []
        for _ in range(50 + args.uploads // 2 + args.uploads):
            body, content_type = multipart(os.urandom(10_240))
            environs.append(
                EnvironBuilder(
                    path="/v1/documents",
                    method="POST",
                    data=body,
                    content_type=content_type,
                    headers={"Authorization": f"Bearer {token}"},
                ).get_environ()
            )
        statuses: list[str] = []

        def start_response(status: str, headers: Any, *exc: Any) -> None:
            statuses.append(status)

        def call(environ: dict[str, Any]) -> None:
            for chunk in app(environ, start_response):
                del chunk

        # The committer thread's work, under its own profiler (cProfile sees one thread).
        group = stack.apps["evidence"].extensions["offerseal.evidence"].group
        committer = cProfile.Profile()
        committing = [False]
        commit = group._commit

        def profiled_commit(pieces: list[Any]) -> None:
            if not committing[0]:
                return commit(pieces)
            committer.enable()
            try:
                return commit(pieces)
            finally:
                committer.disable()

        group._commit = profiled_commit
        for environ in environs[:50]:  # warm-up: caches, connections, the key's lookup
            call(environ)
        bare = environs[50 : 50 + args.uploads // 2]
        started, cpu = time.perf_counter(), time.process_time()
        for environ in bare:
            call(environ)
        unprofiled = (time.perf_counter() - started) / len(bare) * 1000
        unprofiled_cpu = (time.process_time() - cpu) / len(bare) * 1000
        profiler = cProfile.Profile()
        started = time.perf_counter()
        committing[0] = True
        profiler.enable()
        for environ in environs[50 + args.uploads // 2 :]:
            call(environ)
        profiler.disable()
        committing[0] = False
        wall = time.perf_counter() - started
        assert all(s.startswith("201") for s in statuses), set(statuses)
        stack.stop()
    finally:
        db.drop()
        anvil.stop()
    if args.out:
        profiler.dump_stats(args.out)
        committer.dump_stats(args.out.with_suffix(".committer" + args.out.suffix))
    per = wall / args.uploads * 1000
    print(
        f"one upload, one thread, no profiler: {unprofiled:.2f} ms ({1000 / unprofiled:.0f}/s), "
        f"of which this process's CPU {unprofiled_cpu:.2f} ms; "
        f"{args.uploads} under the profiler: {per:.2f} ms each"
    )
    for title, prof in (("request thread", profiler), ("committer thread", committer)):
        report(title, prof, args.uploads, args.top)
    return 0


def report(title: str, profiler: cProfile.Profile, uploads: int, top: int) -> None:
    stats = pstats.Stats(profiler)
    total = sum(v[2] for v in stats.stats.values())  # type: ignore[attr-defined]
    print(f"\n=== {title}: own time {total / uploads * 1000:.3f} ms per upload, by layer:")
    groups: dict[str, float] = {}
    for (filename, _line, _name), value in stats.stats.items():  # type: ignore[attr-defined]
        groups[group_of(filename)] = groups.get(group_of(filename), 0.0) + value[2]
    for label, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / uploads * 1000:6.3f}  {100 * seconds / total:5.1f}%  {label}")
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    print(out.getvalue())
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


if __name__ == "__main__":
    raise SystemExit(main())
