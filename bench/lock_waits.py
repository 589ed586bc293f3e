"""What PostgreSQL's backends wait on during HTTP ingest: `pg_stat_activity` sampled every
10 ms while `bench/ingest.py` uploads 10 KB documents (16 clients) to `offerseal serve evidence
--workers N`, for each N. Backends waiting on `Lock/transactionid` wait for another
transaction's row lock (before group commit: the tenant's receipt counter).

Run: `.venv/bin/python -m bench.lock_waits [--workers 1,2] [--docs 2000]` (prints the rates and
the sampled states, most frequent first; writes nothing).
"""

from __future__ import annotations

import argparse
import collections
import threading

import sqlalchemy as sa

from bench import ingest
from bench.run import OUT, Service, wait_anchored
from harness.procs import PG_ADMIN, ScratchDatabase
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.net import free_port

SAMPLE = sa.text(
    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity"
    " WHERE backend_type = 'client backend' AND state <> 'idle' AND pid <> pg_backend_pid()"
)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--docs", type=int, default=2000)
    args = parser.parse_args()
    samples: collections.Counter[tuple[str, ...]] = collections.Counter()
    stop = threading.Event()

    def sampler() -> None:
        engine = sa.create_engine(PG_ADMIN)
        with engine.connect() as conn:
            while not stop.wait(0.01):
                for row in conn.execute(SAMPLE):
                    samples[tuple(str(v) for v in row)] += 1
                conn.commit()
        engine.dispose()

    OUT.mkdir(parents=True, exist_ok=True)
    anvil = AnvilProcess(free_port())
    thread = threading.Thread(target=sampler, daemon=True)
    thread.start()
    try:
        rows = ingest.http_ingest(
            anvil.url,
            OUT,
            args.docs,
            tuple(int(w) for w in args.workers.split(",")),
            16,
            Service,
            ScratchDatabase,
            wait_anchored,
        )
    finally:
        stop.set()
        thread.join(10)
        anvil.stop()
    for row in rows:
        print(
            f"{row['workers']} process(es): ceiling {row['ceiling']['docs_per_s']} docs/s, "
            f"evidence {row['evidence']['docs_per_s']} docs/s (ratio {row['ratio']}), "
            f"CPU ms per upload {row['evidence']['cpu_ms_per_doc']}"
        )
    print("sampled backend states (state, wait type, wait event):")
    for state, count in samples.most_common(12):
        print(f"  {count:7d}  {state}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
