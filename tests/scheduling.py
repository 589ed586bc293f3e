"""Longest work first: the order in which pytest-xdist hands out the suite's work.

`--dist loadgroup` hands each worker one unit at a time (a group of tests that share a module's
stack, or one test), and a worker holds what it was given until it has run it. Handed out in
the order of collection, a two-minute crash test collected last starts when the other workers
have nothing left to do, and the run waits for it alone. Handing out the longest units first
and the short ones last (the "longest processing time" rule) lets the short ones fill the gaps.

How long a unit takes comes from `tests/durations.json`: seconds per test, setup and teardown
included, written by a run with `OFFERSEAL_RECORD_DURATIONS=tests/durations.json`. A test that
file does not know counts as `UNKNOWN_SECONDS` (or `UNKNOWN_SLOW_SECONDS` when marked slow),
so a new test is scheduled sensibly before the file is written again. The order within a
unit is never changed (a module's tests keep their order), and every worker computes the same
order from the same file, as pytest-xdist requires.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import pytest

DURATIONS = Path(__file__).with_name("durations.json")
UNKNOWN_SECONDS = 1.0
UNKNOWN_SLOW_SECONDS = 20.0
RECORD_ENV = "OFFERSEAL_RECORD_DURATIONS"
# Tests shorter than this are not written down: they count as UNKNOWN_SECONDS, near enough.
RECORD_FLOOR_SECONDS = 0.5


def _base_id(nodeid: str) -> str:
    """The test's id without pytest-xdist's `@group` suffix."""
    return nodeid.split("@", 1)[0]


def load_durations(path: Path = DURATIONS) -> dict[str, float]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    tests = data.get("tests", {}) if isinstance(data, dict) else {}
    return {str(k): float(v) for k, v in tests.items() if isinstance(v, int | float)}


def _unit(item: pytest.Item) -> str:
    """The unit pytest-xdist schedules: the test's xdist group, or the test alone."""
    names = sorted(
        str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
        for mark in item.iter_markers("xdist_group")
    )
    return "group:" + "_".join(names) if names else "test:" + _base_id(item.nodeid)


def _seconds(item: pytest.Item, known: dict[str, float]) -> float:
    seconds = known.get(_base_id(item.nodeid))
    if seconds is not None:
        return seconds
    return UNKNOWN_SLOW_SECONDS if item.get_closest_marker("slow") else UNKNOWN_SECONDS


def longest_first(items: list[pytest.Item], known: dict[str, float]) -> list[pytest.Item]:
    """`items` with whole units ordered by their estimated time, longest first; ties keep the
    collection order, and so does every unit inside."""
    cost: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for index, item in enumerate(items):
        unit = _unit(item)
        cost[unit] += _seconds(item, known)
        first.setdefault(unit, index)
    return sorted(items, key=lambda item: (-cost[_unit(item)], first[_unit(item)]))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """After the groups are named (tests/conftest.py), and only in pytest-xdist's workers (the
    controller schedules what they collected): a run in one process keeps the collection order."""
    if not hasattr(config, "workerinput"):
        return
    items[:] = longest_first(items, load_durations())


def pytest_configure(config: pytest.Config) -> None:
    # pytest-xdist would otherwise sort the units by how many tests they hold.
    if hasattr(config.option, "loadscopereorder"):
        config.option.loadscopereorder = False
    if os.environ.get(RECORD_ENV) and not hasattr(config, "workerinput"):
        recorder = _Recorder(Path(os.environ[RECORD_ENV]))
        config.pluginmanager.register(recorder, "offerseal-durations")


class _Recorder:
    """Sums each test's setup, call and teardown as the controller hears of them, and writes
    the tests that took at least RECORD_FLOOR_SECONDS when the session ends."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.seconds[_base_id(report.nodeid)] += report.duration

    def pytest_sessionfinish(self) -> None:
        tests = {
            nodeid: round(seconds, 1)
            for nodeid, seconds in sorted(self.seconds.items())
            if seconds >= RECORD_FLOOR_SECONDS
        }
        document = {
            "about": "seconds per test (setup, call, teardown) of one run, for tests/scheduling.py",
            "tests": tests,
        }
        text = json.dumps(document, indent=1, sort_keys=True) + "\n"
        self.path.write_text(text, encoding="utf-8")
