"""The stamping worker: each anchored root is also time-stamped by every configured RFC 3161
Time-Stamp Authority, the second witness beside the chain.

Stamping never holds up anchoring: it runs on its own thread after a batch is anchored, and a TSA
that is down or answers badly is tried again later (each TSA with its own backoff, so one that is
down does not delay the others). A bundle carries the stamps that exist when it is built and says
so in its `witnesses`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import requests
from cryptography import x509
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from offerseal_verify import timestamps
from offerseal_verify.hexbytes import from_hex32

from ..shared.db import Database
from ..shared.redact import redact_url
from ..shared.workers import Backoff, run_every
from .models import Batch, BatchTimestamp

log = logging.getLogger(__name__)

Post = Callable[[str, bytes], bytes]  # (TSA URL, DER query) -> DER reply
BATCHES_PER_STEP = 50
MAX_REPLY_BYTES = 64 * 1024


class TsaUnavailable(Exception):
    """The TSA did not answer with a time-stamp reply (down, refused, or not a TSA)."""


def http_post(url: str, query: bytes, timeout: float = 10.0) -> bytes:
    """RFC 3161 over HTTP (RFC 3161 section 3.4)."""
    try:
        response = requests.post(
            url,
            data=query,
            headers={"Content-Type": timestamps.QUERY_TYPE},
            timeout=timeout,
            stream=True,
        )
        body = response.raw.read(MAX_REPLY_BYTES + 1, decode_content=True)
    except requests.RequestException as exc:
        raise TsaUnavailable(f"{redact_url(url)} did not answer: {type(exc).__name__}") from None
    ctype = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if response.status_code != 200 or ctype != timestamps.REPLY_TYPE:
        raise TsaUnavailable(f"{redact_url(url)} answered {response.status_code} {ctype or '-'}")
    if len(body) > MAX_REPLY_BYTES:
        raise TsaUnavailable(f"{redact_url(url)} answered more than {MAX_REPLY_BYTES} bytes")
    return bytes(body)


@dataclass
class _TsaState:
    backoff: Backoff = field(default_factory=lambda: Backoff(1.0, 300.0))
    next_try: float = 0.0


class Stamper:
    def __init__(
        self,
        db: Database,
        tsa_urls: Sequence[str],
        roots: Sequence[x509.Certificate] = (),
        *,
        post: Post = http_post,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.tsa_urls = tuple(tsa_urls)
        self.roots = tuple(roots)
        self.post = post
        self.interval = interval
        self.clock = clock
        self.state = {url: _TsaState() for url in self.tsa_urls}

    def due(self, tsa: str, limit: int = BATCHES_PER_STEP) -> list[tuple[int, str]]:
        """Anchored batches (oldest first) that `tsa` has not stamped: (id, root)."""
        stamped = select(BatchTimestamp.batch_id).where(BatchTimestamp.tsa == tsa)
        with self.db.sessions() as session:
            rows = session.execute(
                select(Batch.id, Batch.root)
                .where(Batch.state == "anchored", Batch.id.not_in(stamped))
                .order_by(Batch.id)
                .limit(limit)
            ).all()
        return [(int(batch_id), str(root)) for batch_id, root in rows]

    def stamp(self, tsa: str, batch_id: int, root_hex: str) -> timestamps.Stamp:
        """Ask `tsa` for a stamp of the root, check it and store it."""
        root = from_hex32(root_hex)
        query = timestamps.request_for(root)
        stamp = timestamps.accept(self.post(tsa, query.der), root, query, self.roots)
        try:
            with self.db.transaction() as session:
                session.add(
                    BatchTimestamp(
                        batch_id=batch_id,
                        tsa=tsa,
                        response=stamp.response,
                        gen_time=stamp.gen_time,
                        serial_number=str(stamp.serial_number),
                        policy=stamp.policy,
                        certificates=list(stamp.certificates),
                    )
                )
        except IntegrityError:
            log.info("batch %s was stamped by %s meanwhile (another replica)", batch_id, tsa)
        return stamp

    def run_once(self) -> int:
        """One round over the TSAs that are not waiting out a failure. Returns stamps stored."""
        stored = 0
        for tsa, state in self.state.items():
            if self.clock() < state.next_try:
                continue
            for batch_id, root in self.due(tsa):
                try:
                    self.stamp(tsa, batch_id, root)
                except (TsaUnavailable, timestamps.TimestampRefused) as exc:
                    delay = state.backoff.next()
                    state.next_try = self.clock() + delay
                    log.warning(
                        "time-stamp of batch %s by %s failed (%s); that TSA is tried again in "
                        "%.0fs, anchoring goes on",
                        batch_id,
                        redact_url(tsa),
                        exc,
                        delay,
                    )
                    break
                state.backoff.reset()
                state.next_try = 0.0
                stored += 1
        return stored

    def run(self, stop: threading.Event) -> None:
        run_every(stop, self.interval, self.run_once, name="stamping", log=log)
