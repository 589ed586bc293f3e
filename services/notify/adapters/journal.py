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
import functools
import hashlib
import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path


@functools.lru_cache(maxsize=1)
def _host() -> str:
    """This host: a copy of the data folder on another machine (or in another container)
    names other claimers than the original."""
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:12]


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
        self._closed = False

    def _lock(self, path: Path) -> int | None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _own(self) -> int:
        if self._closed:
            raise RuntimeError("the sent journal is closed")
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
        return f"{self._folder_id()}.{_host()}/{path.stem}"

    def _folder_id(self) -> str:
        """The folder's own id, made once (linked into place: the first of two processes that
        start together wins, the other reads it)."""
        if self._id is None:
            target = self.folder / "id"
            if not target.exists():
                draft = self.folder / f".id-{os.getpid()}-{uuid.uuid4().hex}"
                with draft.open("w") as out:
                    out.write(uuid.uuid4().hex)
                    out.flush()
                    os.fsync(out.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(draft, target)
                draft.unlink()
            found = target.read_text().strip()
            if len(found) != 32:
                raise RuntimeError(f"{target} is damaged: remove it (it is made again)")
            self._id = found
        return self._id

    def claimers_gone(self, own: bool = True) -> list[str]:
        """After `leftovers` and before `let_go`: the claimers no live process is any more, the
        holders of every slot taken with it, and (`own`, only before this process claims
        anything) the holder before us of this slot. Those slots stay held until `let_go`, so
        no process that starts meanwhile claims under one of those names."""
        gone = [self._name(path) for _, path in self._adopted]
        return [self.claimer, *gone] if own else gone

    def record(self, accepted: Accepted) -> None:
        line = json.dumps(accepted.__dict__, separators=(",", ":")) + "\n"
        os.write(self._own(), line.encode())

    def leftovers(self, own: bool = True) -> list[Accepted]:
        """What dead holders recorded, in every slot no live process holds and (`own`, at
        start) in this one (a torn last line is ignored: its message was not acknowledged by
        the write, so it is sent again). The other slots stay held until `let_go`."""
        mine = self._own()
        held = {path for _, path in self._adopted}
        for path in sorted(self.folder.glob("sent-*.journal")):
            if path == self._path or path in held:
                continue
            fd = self._lock(path)
            if fd is not None:
                self._adopted.append((fd, path))
        found = []
        for fd in [mine] * own + [fd for fd, _ in self._adopted]:
            os.lseek(fd, 0, os.SEEK_SET)
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
            for line in b"".join(chunks).splitlines():
                with contextlib.suppress(ValueError, TypeError):
                    found.append(Accepted(**json.loads(line)))
        return found

    def clear(self) -> None:
        """Everything recorded is committed: this slot and the adopted ones are emptied (the
        adopted ones stay held until `let_go`)."""
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
        for fd, _ in self._adopted:
            os.ftruncate(fd, 0)

    def let_go(self) -> None:
        """The adopted slots are settled (what they held recorded, their claims released):
        emptied and let go."""
        for fd, _ in self._adopted:
            os.ftruncate(fd, 0)
            os.close(fd)
        self._adopted.clear()

    def close(self) -> None:
        """Let go of every slot; a closed journal takes no slot again."""
        self._closed = True
        for fd, _ in self._adopted:
            os.close(fd)
        self._adopted.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
