"""The suite's own scheduling (tests/scheduling.py): whole units, longest first."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.scheduling import UNKNOWN_SLOW_SECONDS, load_durations, longest_first


class _Item:
    def __init__(self, nodeid: str, group: str | None = None, slow: bool = False) -> None:
        self.nodeid = nodeid
        self._marks = [pytest.mark.xdist_group(group).mark] if group else []
        self._slow = slow

    def iter_markers(self, name: str) -> list[Any]:
        return [m for m in self._marks if m.name == name]

    def get_closest_marker(self, name: str) -> Any:
        return object() if name == "slow" and self._slow else None


def test_units_go_longest_first_and_keep_their_inner_order() -> None:
    items: list[Any] = [
        _Item("a.py::quick"),
        _Item("b.py::one@b", group="b"),
        _Item("b.py::two@b", group="b"),
        _Item("c.py::crash", slow=True),
        _Item("d.py::known"),
    ]
    known = {"b.py::one": 2.0, "b.py::two": 3.0, "d.py::known": 30.0}
    order = [item.nodeid for item in longest_first(items, known)]
    # d alone 30 s, then c (unknown but slow: 20 s), then the group b (5 s), then a (1 s)
    assert UNKNOWN_SLOW_SECONDS == 20.0
    assert order == ["d.py::known", "c.py::crash", "b.py::one@b", "b.py::two@b", "a.py::quick"]


def test_equal_units_keep_the_collection_order() -> None:
    items: list[Any] = [_Item(f"m.py::t{n}") for n in range(5)]
    assert longest_first(items, {}) == items


def test_the_durations_file_is_read_and_a_broken_one_is_ignored(tmp_path: Path) -> None:
    good = tmp_path / "d.json"
    good.write_text(json.dumps({"tests": {"x.py::t": 1.5, "y.py::u": "not a number"}}))
    assert load_durations(good) == {"x.py::t": 1.5}
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert load_durations(broken) == {}
    assert load_durations(tmp_path / "missing.json") == {}


def test_the_committed_durations_file_is_readable() -> None:
    assert len(load_durations()) > 100
