"""What every bench reports beside its figures: percentiles of its samples and the machine it ran
on. Imported by the benches (never the other way round), so no bench needs another's `main`."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def pct(values: list[float], q: float) -> float:
    """The `q`th percentile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def machine() -> str:
    """Cores, CPU model, memory and platform, as RESULTS.md names the machine."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB, {platform.platform()}"
