"""Several processes appending to one log at full speed (a Celery prefork pool, an RQ worker-pool).

The kernel grows a file page by page and ``stat``/``pread`` do not wait for a writer, so
a line being written by one process can look like a fragment to another; before the
appender looked again, about one line in 200 was followed by an empty line here.
"""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from pipeline.appender import Appender

pytestmark = [pytest.mark.unit]

LINE = "Time: 2026-01-01 00:00:00,000 Task: tests.no_op Task-time: 0.000123 Queue: celery Status: finished Job: {}"


def _append(path: str, writer: int, count: int) -> None:
    appender = Appender(path, "test log", "TASK_TIME_LOG", "test")
    for index in range(count):
        appender.write_line(LINE.format(f"{writer}-{index:08d}-{'x' * 40}"))


def test_concurrent_writers_leave_whole_lines_and_no_empty_line(tmp_path: Path) -> None:
    path, count = str(tmp_path / "task-time.log"), 10_000
    context = multiprocessing.get_context("fork")
    writers = [context.Process(target=_append, args=(path, writer, count)) for writer in range(4)]
    for process in writers:
        process.start()
    for process in writers:
        process.join(120)
    lines = Path(path).read_text().split("\n")
    assert lines[-1] == ""
    assert len(lines[:-1]) == 4 * count and all(line.startswith("Time: ") for line in lines[:-1])
