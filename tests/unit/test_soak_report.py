"""bench/soak.py's report: the start/end table, and every sample so a leak shows as a curve."""

from __future__ import annotations

from bench.soak import BAD, write


def test_the_report_lists_every_sample_not_only_the_start_and_the_end() -> None:
    samples = [
        {"at": 100.0, "rss_mib": 160, "open_fds": 80},
        {"at": 400.0, "rss_mib": 190, "open_fds": 81},
        {"at": 700.0, "rss_mib": 200, "open_fds": 80},
    ]
    result = {
        "fault_seconds": 600.0,
        "agreement_clients": 2,
        "quiet_seconds": 60.0,
        "latency": {},
        "documents_201": 10,
        "agreements_offered": 2,
        "signatures_accepted": 2,
    }
    result.update(dict.fromkeys(BAD, 0))
    text = write(samples, result, 300.0)
    assert "| rss_mib | 160 | 200 | +40 |" in text
    assert (
        "| 0 | 160 | 80 |" in text and "| 300 | 190 | 81 |" in text and "| 600 | 200 | 80 |" in text
    )
