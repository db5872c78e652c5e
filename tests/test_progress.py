"""Progress lines of long work: rows, rows/s and bytes, every few seconds."""

from __future__ import annotations

import logging

import pytest

from mozart_etl.core.progress import Progress, human_bytes


def test_progress_logs_rows_rate_and_bytes(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("tests.progress")
    progress = Progress("extract t", logger, every_seconds=0)
    with caplog.at_level(logging.INFO, logger="tests.progress"):
        progress.add(1000, 2048)
        progress.add(500, 1024)
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 2
    assert messages[0].startswith("extract t: 1,000 rows, ")
    assert messages[1].startswith("extract t: 1,500 rows, ")
    assert all(m.endswith(" s so far") and " rows/s, " in m for m in messages)
    assert "3.0 KiB in memory" in caplog.records[-1].getMessage()
    quiet = Progress("extract t", logger, every_seconds=3600)
    caplog.clear()
    quiet.add(1, 1)
    assert caplog.records == []


def test_human_bytes() -> None:
    assert [human_bytes(n) for n in (512, 2048, 5 * 1024**2, 3 * 1024**4)] == [
        "512 B",
        "2.0 KiB",
        "5.0 MiB",
        "3072.0 GiB",
    ]
