"""Where the milliseconds of one offer and of one signature go: the evidence and contracts
services (as one process builds them, their workers running) on PostgreSQL and RabbitMQ
against a real Anvil, the contracts app called as WSGI without a server or a network, under
cProfile. Requests are prepared before the clock starts; the JSON-RPC calls each request makes
are counted by method.

- offers: POST /v1/agreements, one after the other (answered `offering`);
- signatures: POST /v1/agreements/{id}/signature of offered agreements (each waits for its
  block), one after the other.

Run: `.venv/bin/python -m bench.profile_offer [--offers N] [--signatures N]
[--block-time S]` (prints, per path, the time per request, the JSON-RPC calls per request, a
grouping by layer and the top functions; `--out PREFIX` keeps the raw profiles).
"""

from __future__ import annotations

import argparse
import collections
import cProfile
import hashlib
import io
import json
import pstats
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from web3.providers.rpc import HTTPProvider
from werkzeug.test import EnvironBuilder

from bench.chain_bench import offer_body
from harness.procs import AMQP, ScratchDatabase
from offerseal.shared import chain
from offerseal.shared.anvil import AnvilProcess
from offerseal.shared.config import ANVIL_DEV_KEY, ANVIL_DEV_KEY_2, load_settings
from offerseal.shared.net import free_port
from offerseal.shared.transactions.onchain import Web3SigningChain
from offerseal.stack import Stack, open_database

# Where each function's own time is counted: the first group whose marker is in its file path
# (or, for built-ins, in the function's name).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("waiting (sleep, locks, sockets: JSON-RPC and PostgreSQL round trips)", ("sleep",)),
    ("PostgreSQL driver (psycopg)", ("psycopg",)),
    ("SQLAlchemy (ORM, Core, pool)", ("sqlalchemy",)),
    ("web3.py (providers, middleware, formatters, contract encoding)", ("web3",)),
    ("ABI encoding / decoding (eth_abi)", ("eth_abi",)),
    (
        "EIP-712 hashing, transaction signing (eth_account, eth_keys, rlp, coincurve)",
        (
            "eth_account",
            "eth_keys",
            "eth_utils",
            "eth_hash",
            "rlp",
            "coincurve",
            "eth_rlp",
            "pycryptodome",
            "Crypto",
        ),
    ),
    ("HTTP client (requests, urllib3, http.client)", ("requests", "urllib3", "http/client")),
    ("flask, flask-smorest, marshmallow (routing, schemas)", ("flask", "marshmallow", "webargs")),
    ("pydantic", ("pydantic",)),
    ("OfferSeal code", ("offerseal", "services/")),
    ("json, uuid, datetime, stdlib", ("json", "uuid", "datetime", "python3")),
)
WAITS = ("sleep", "acquire", "recv", "recv_into", "poll", "select", "connect", "sendall", "wait")


def group_of(filename: str, name: str) -> str:
    if filename == "~" and any(w in name for w in WAITS):
        return GROUPS[0][0]
    for label, markers in GROUPS[1:]:
        if any(marker in filename for marker in markers):
            return label
    return "other (built-ins)"


class RpcCounter:
    """Counts the JSON-RPC calls made from the thread that measures, by method."""

    def __init__(self) -> None:
        self.counts: collections.Counter[str] = collections.Counter()
        self.thread = threading.get_ident()
        self.active = False
        original = HTTPProvider._make_request  # below web3's request cache
        counter = self

        def make_request(provider: Any, method: Any, params: Any) -> Any:
            if counter.active and threading.get_ident() == counter.thread:
                counter.counts[str(method)] += 1
            return original(provider, method, params)

        HTTPProvider._make_request = make_request  # type: ignore[method-assign]
        plain = Web3SigningChain.rpc  # the calls made without web3

        def rpc(client: Any, method: str, params: list[Any]) -> Any:
            if counter.active and threading.get_ident() == counter.thread:
                counter.counts[method] += 1
            return plain(client, method, params)

        Web3SigningChain.rpc = rpc  # type: ignore[method-assign]

    def watch_sql(self, engine: Any) -> None:
        """Counts the SQL statements of the measuring thread too (by their first word)."""

        def before(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            if self.active and threading.get_ident() == self.thread:
                self.counts["SQL " + " ".join(statement.split())[:90]] += 1

        sa.event.listen(engine, "before_cursor_execute", before)

    @contextmanager
    def counting(self) -> Iterator[None]:
        self.counts.clear()
        self.active = True
        try:
            yield
        finally:
            self.active = False


def measure(
    label: str,
    environs: list[dict[str, Any]],
    call: Callable[[dict[str, Any]], str],
    rpc: RpcCounter,
    top: int,
    out: Path | None,
) -> dict[str, Any]:
    """Half the requests without the profiler (the time per request), half under it."""
    half = len(environs) // 2
    bare, profiled = environs[:half], environs[half:]
    started, cpu = time.perf_counter(), time.process_time()
    with rpc.counting():
        statuses = [call(e) for e in bare]
    wall = (time.perf_counter() - started) / len(bare) * 1000
    cpu_ms = (time.process_time() - cpu) / len(bare) * 1000
    calls = dict(rpc.counts)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    statuses += [call(e) for e in profiled]
    profiler.disable()
    per = (time.perf_counter() - started) / len(profiled) * 1000
    bad = [s for s in statuses if not s.startswith(("200", "201"))]
    assert not bad, bad[:3]
    if out:
        profiler.dump_stats(f"{out}-{label}.prof")
    stats = pstats.Stats(profiler)
    groups: dict[str, float] = {}
    for (filename, _line, name), value in stats.stats.items():  # type: ignore[attr-defined]
        key = group_of(filename, name)
        groups[key] = groups.get(key, 0.0) + value[2]
    total = sum(groups.values())
    print(
        f"\n=== {label}: {wall:.1f} ms each, one at a time, no profiler ({1000 / wall:.1f}/s; "
        f"this process's CPU {cpu_ms:.1f} ms, its workers included); {len(profiled)} under the "
        f"profiler: {per:.1f} ms each"
    )
    rpc_total = sum(v for k, v in calls.items() if not k.startswith("SQL "))
    print(f"JSON-RPC calls and SQL statements per request ({rpc_total / len(bare):.1f} RPC):")
    for method, n in sorted(calls.items(), key=lambda kv: -kv[1]):
        print(f"  {n / len(bare):5.2f}  {method}")
    print("own time by layer (ms per request, under the profiler):")
    for name, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {seconds / len(profiled) * 1000:7.2f}  {100 * seconds / total:5.1f}%  {name}")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(top)
    print(text.getvalue())
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    print(text.getvalue())
    return {
        "ms": round(wall, 2),
        "cpu_ms": round(cpu_ms, 2),
        "rpc": {k: v / len(bare) for k, v in calls.items()},
        "layers_ms": {k: round(v / len(profiled) * 1000, 2) for k, v in groups.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--offers", type=int, default=200)
    parser.add_argument("--signatures", type=int, default=40)
    parser.add_argument("--block-time", type=float, default=0.0, help="0: instant mining")
    parser.add_argument("--out", type=Path, help="prefix of the raw profiles (.prof)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    extra = ("--block-time", f"{args.block_time:g}") if args.block_time else ()
    anvil = AnvilProcess(free_port(), extra_args=extra)
    db = ScratchDatabase()
    data_dir = Path(tempfile.mkdtemp(prefix="offerseal-profile-"))
    rpc = RpcCounter()
    results: dict[str, Any] = {}
    try:
        settings = load_settings(
            {
                "OFFERSEAL_DATA_DIR": str(data_dir),
                "OFFERSEAL_DATABASE_URL": db.url,
                "OFFERSEAL_RPC_URL": anvil.url,
                "OFFERSEAL_SIGNER_KEY": ANVIL_DEV_KEY,
                "OFFERSEAL_CONTRACTS_SIGNER_KEY": ANVIL_DEV_KEY_2,
                "OFFERSEAL_BROKER_URL": AMQP,
                "OFFERSEAL_LOG_LEVEL": "WARNING",
            }
        )
        from offerseal.shared.auth import create_key

        store = open_database(settings)
        _, token = create_key(store, "hr", "bench", "profile")
        store.dispose()
        stack = Stack(settings, ("evidence", "contracts"), http=False).start()
        stack.wait_ready()
        rpc.watch_sql(stack.db.engine)
        app = stack.apps.get("contracts") or stack.contracts.app
        auth = {"Authorization": f"Bearer {token}"}
        bodies: list[Any] = []

        def start_response(status: str, headers: Any, *exc: Any) -> None:
            bodies.append(status)

        def call(environ: dict[str, Any]) -> str:
            chunks = b"".join(app(environ, start_response))
            bodies.append(chunks)
            return str(bodies[-2])

        def post(path: str, body: Any, headers: dict[str, str], query: str = "") -> Any:
            return EnvironBuilder(
                path=path,
                method="POST",
                json=body,
                headers=headers,
                query_string=query,
            ).get_environ()

        # offers
        warm = [post("/v1/agreements", offer_body(i), auth) for i in range(20)]
        for environ in warm:
            assert call(environ).startswith("201"), bodies[-1][:300]
        offers = [post("/v1/agreements", offer_body(i), auth) for i in range(args.offers)]
        results["offer"] = measure("offer", offers, call, rpc, args.top, args.out)

        # signatures: offered agreements (waited for), typed data fetched and signed first
        seed = uuid.uuid4().hex
        keys = [
            "0x" + hashlib.sha256(f"{seed}-{i}".encode()).hexdigest()
            for i in range(args.signatures + 4)
        ]
        prepared = []
        for key in keys:
            environ = post(
                "/v1/agreements",
                offer_body(0, chain.account(key).address),
                {**auth, "Prefer": "wait=60"},
            )
            assert call(environ).startswith("201")
            agreement = json.loads(bodies[-1])
            assert agreement["state"] == "offered", agreement
            link_token = agreement["signing_link"].split("token=")[1]
            typed = json.loads(
                b"".join(
                    app(
                        EnvironBuilder(
                            path=f"/v1/agreements/{agreement['id']}/typed-data",
                            query_string={"token": link_token},
                        ).get_environ(),
                        start_response,
                    )
                )
            )
            signature = "0x" + chain.sign_typed_data(key, typed).hex()
            prepared.append(
                post(
                    f"/v1/agreements/{agreement['id']}/signature",
                    {"signature": signature},
                    {},
                    f"token={link_token}",
                )
            )
        for environ in prepared[:4]:
            assert call(environ).startswith("200"), bodies[-1][:300]
        results["signature"] = measure("signature", prepared[4:], call, rpc, args.top, args.out)
        stack.stop()
    finally:
        db.drop()
        anvil.stop()
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
