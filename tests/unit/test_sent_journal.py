"""The sent journal: what a killed dispatcher handed to a channel is found by its successor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from offerseal.notify.adapters.journal import Accepted, SentJournal


def test_a_successor_finds_what_a_killed_holder_recorded(tmp_path: Path) -> None:
    # A real process records two messages and is killed (SIGKILL) without closing anything.
    script = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from offerseal.notify.adapters.journal import Accepted, SentJournal\n"
        f"j = SentJournal(Path({str(tmp_path)!r}))\n"
        "j.record(Accepted('t1', '<t1@x>', 'email', 'accepted'))\n"
        "j.record(Accepted('t2', '<t2@x>', 'webhook', 'answered 204'))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], check=False)
    assert result.returncode == -9
    successor = SentJournal(tmp_path)
    assert successor.path.name == "sent-0.journal"  # the dead holder's lock is gone
    assert successor.leftovers() == [
        Accepted("t1", "<t1@x>", "email", "accepted"),
        Accepted("t2", "<t2@x>", "webhook", "answered 204"),
    ]
    successor.clear()
    assert successor.leftovers() == []


def test_live_holders_get_their_own_slots_and_a_torn_line_is_ignored(tmp_path: Path) -> None:
    first, second = SentJournal(tmp_path), SentJournal(tmp_path)
    assert first.path != second.path
    first.record(Accepted("t1", None, "email", "ok"))
    with open(first.path, "ab") as raw:
        raw.write(b'{"touchpoint_id": "t2", "mess')  # killed in the middle of a write
    assert first.leftovers() == [Accepted("t1", None, "email", "ok")]
    first.close()
    second.close()
    assert os.path.exists(tmp_path / "sent-0.journal")
