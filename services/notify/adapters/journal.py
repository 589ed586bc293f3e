"""The sent journal: what a channel accepted that the database may not have recorded yet.

Outcomes are committed GROUP at a time, so a dispatcher killed after the SMTP server or the
webhook accepted a message, but before the commit, would send it again after a restart. Each
accepted message is appended to a local journal file first (one `write`, no fsync: it survives
the process being killed, which is the failure this guards against; a power cut in the same
millisecond can still lose it and cause one duplicate with the same Message-ID). At start a
dispatcher takes a free journal slot (flock), records what its dead predecessor left there as
sent, and empties it; after every committed group it empties it again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Accepted:
    touchpoint_id: str
    message_id: str | None
    channel: str
    detail: str


class SentJournal:
    def __init__(self, folder: Path, slots: int = 64) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for slot in range(slots):
            path = folder / f"sent-{slot}.journal"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.path, self._fd = path, fd
            return
        raise RuntimeError(f"all {slots} journal slots in {folder} are in use")

    def record(self, accepted: Accepted) -> None:
        line = json.dumps(accepted.__dict__, separators=(",", ":")) + "\n"
        os.write(self._fd, line.encode())

    def leftovers(self) -> list[Accepted]:
        """What the previous holder of this slot recorded (a torn last line is ignored: its
        message was not acknowledged by the write, so it is sent again)."""
        os.lseek(self._fd, 0, os.SEEK_SET)
        chunks = []
        while chunk := os.read(self._fd, 1 << 16):
            chunks.append(chunk)
        found = []
        for line in b"".join(chunks).splitlines():
            with contextlib.suppress(ValueError, TypeError):
                found.append(Accepted(**json.loads(line)))
        return found

    def clear(self) -> None:
        os.ftruncate(self._fd, 0)

    def close(self) -> None:
        os.close(self._fd)
