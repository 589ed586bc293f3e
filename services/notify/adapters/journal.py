"""The sent journal: what a channel accepted that the database may not have recorded yet.

Outcomes are committed GROUP at a time, so a dispatcher killed after the SMTP server or the
webhook accepted a message, but before the commit, would send it again after a restart. Each
accepted message is appended to a local journal file first (one `write`, no fsync: it survives
the process being killed, which is the failure this guards against; a power cut in the same
millisecond can still lose it and cause one duplicate with the same Message-ID). At start a
dispatcher takes a free journal slot (flock) and every other slot no live process holds,
records what dead dispatchers left in them as sent, and empties them; after every committed
group it empties its own again. A row a dispatcher claims names its slot (`claimer`): the rows
the dead holders of the slots taken at start had claimed are theirs to put back at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Accepted:
    touchpoint_id: str
    message_id: str | None
    channel: str
    detail: str


class SentJournal:
    """The journal of the process that dispatches. It takes a slot when it first records or
    looks for leftovers (every worker builds one; only the dispatcher takes a slot), and at that
    look it also takes every other slot no live process holds: the dispatcher killed before it
    may have held any of them."""

    def __init__(self, folder: Path, slots: int = 64) -> None:
        self.folder, self.slots = folder, slots
        self._fd: int | None = None
        self._path: Path | None = None
        self._adopted: list[tuple[int, Path]] = []  # slots of dead holders, held until clear
        self._id: str | None = None

    def _lock(self, path: Path) -> int | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _own(self) -> int:
        if self._fd is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            for slot in range(self.slots):
                path = self.folder / f"sent-{slot}.journal"
                fd = self._lock(path)
                if fd is not None:
                    self._fd, self._path = fd, path
                    break
            else:
                raise RuntimeError(f"all {self.slots} journal slots in {self.folder} are in use")
        return self._fd

    @property
    def path(self) -> Path:
        self._own()
        assert self._path is not None
        return self._path

    @property
    def claimer(self) -> str:
        """What a row this dispatcher claims records as its claimer: this slot, named so that
        no other folder's slot (another host's) has the same name."""
        return self._name(self.path)

    def _name(self, path: Path) -> str:
        return f"{self._folder_id()}/{path.stem}"

    def _folder_id(self) -> str:
        """The folder's own id, made once (linked into place: the first of two processes that
        start together wins, the other reads it)."""
        if self._id is None:
            target = self.folder / "id"
            if not target.exists():
                draft = self.folder / f".id-{os.getpid()}-{uuid.uuid4().hex}"
                draft.write_text(uuid.uuid4().hex)
                with contextlib.suppress(FileExistsError):
                    os.link(draft, target)
                draft.unlink()
            self._id = target.read_text().strip()
        return self._id

    def claimers_gone(self) -> list[str]:
        """After `leftovers` and before `clear`: the claimers no live process is any more, the
        holders before us of this slot and of every slot taken with it. Their slots stay held
        until `clear`, so no process that starts meanwhile claims under one of those names."""
        return [self.claimer] + [self._name(path) for _, path in self._adopted]

    def record(self, accepted: Accepted) -> None:
        line = json.dumps(accepted.__dict__, separators=(",", ":")) + "\n"
        os.write(self._own(), line.encode())

    def leftovers(self) -> list[Accepted]:
        """What dead holders recorded, in this slot and in every other one no live process
        holds (a torn last line is ignored: its message was not acknowledged by the write, so
        it is sent again). The other slots stay held until `clear`."""
        own = self._own()
        held = {path for _, path in self._adopted}
        for path in sorted(self.folder.glob("sent-*.journal")):
            if path == self._path or path in held:
                continue
            fd = self._lock(path)
            if fd is not None:
                self._adopted.append((fd, path))
        found = []
        for fd in [own, *(fd for fd, _ in self._adopted)]:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            for line in b"".join(chunks).splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    found.append(Accepted(**json.loads(line)))
        return found

    def clear(self) -> None:
        """Everything recorded is committed: this slot and the adopted ones are emptied, and
        the adopted ones let go."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        for fd, _ in self._adopted:
            os.ftruncate(fd, 0)
            os.close(fd)
        self._adopted.clear()

    def close(self) -> None:
        for fd, _ in self._adopted:
            os.close(fd)
        self._adopted.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
