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


def test_a_dispatcher_finds_what_a_killed_one_left_in_another_slot(tmp_path: Path) -> None:
    """Every worker of `serve --workers 2` used to take a slot: after SIGKILL of both, the new
    dispatcher could take the slot of the worker that never dispatched, and the killed
    dispatcher's accepted messages were sent again once their claims lapsed (a duplicate
    e-mail in a chaos run). The dispatcher now reads every slot no live process holds."""
    script = (
        "import os, signal\n"
        "from pathlib import Path\n"
        "from offerseal.notify.adapters.journal import Accepted, SentJournal\n"
        f"other, dispatcher = SentJournal(Path({str(tmp_path)!r})), "
        f"SentJournal(Path({str(tmp_path)!r}))\n"
        "other.path\n"  # slot 0: a worker that never dispatched
        "dispatcher.record(Accepted('t1', '<t1@x>', 'email', 'accepted'))\n"  # slot 1
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    live = SentJournal(tmp_path)  # another host's dispatcher on the same data folder: slot 0
    live.record(Accepted("t2", "<t2@x>", "email", "accepted"))
    assert subprocess.run([sys.executable, "-c", script], check=False).returncode == -9
    successor = SentJournal(tmp_path)  # the new dispatcher, forked first
    worker = SentJournal(tmp_path)  # the other new worker: it never dispatches
    assert successor.leftovers() == [Accepted("t1", "<t1@x>", "email", "accepted")]
    assert successor.path.name == "sent-1.journal"  # t1 was in slot 2: adopted
    successor.clear()
    assert successor.leftovers() == []
    assert live.leftovers() == [Accepted("t2", "<t2@x>", "email", "accepted")]
    worker.close()


def test_claimers_gone_are_the_dead_holders_slots_and_never_a_live_one(tmp_path: Path) -> None:
    """A row names the slot of the dispatcher that claimed it. A dispatcher puts back the rows
    of every slot whose holder is gone (at start its own slot's previous holder too), and holds
    those slots until `let_go`, so nobody claims under one of those names meanwhile."""
    folder = tmp_path / "journal"
    dead, live, other_dead = SentJournal(folder), SentJournal(folder), SentJournal(folder)
    names = [dead.claimer, live.claimer, other_dead.claimer]
    assert len(set(names)) == 3 and names[0].endswith("/sent-0")
    elsewhere = SentJournal(tmp_path / "elsewhere")
    assert elsewhere.claimer != names[0]  # another folder: another name
    elsewhere.close()
    dead.close()  # as a SIGKILL would: the lock goes with the process
    other_dead.record(Accepted("t1", "<t1@x>", "email", "accepted"))
    other_dead.close()
    successor = SentJournal(folder)
    assert [a.touchpoint_id for a in successor.leftovers()] == ["t1"]
    assert successor.claimer == names[0]  # it took the free slot 0
    assert successor.claimers_gone() == [names[0], names[2]]  # empty slots count too
    assert successor.claimers_gone(own=False) == [names[2]]  # a release pass: not its own
    successor.clear()
    late = SentJournal(folder)
    assert late.claimer not in names  # slot 2 stays held until let_go(), even once emptied
    successor.let_go()
    again = SentJournal(folder)
    assert again.claimer == names[2]
    for journal in (late, again, live, successor):
        journal.close()
