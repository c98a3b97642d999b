"""A full disk cuts a line short: the fragment stays a line of its own, never glued to the next.

The log lives on a real 16 KiB tmpfs mounted by the test (CI runs as root), so writes are
cut short and refused by the kernel exactly as on a full disk.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from pipeline.lines.task import TaskRun, format_fields
from pipeline.tasklog import TaskLineFormatter, TaskLogHandler
from tests import tasks
from tests.support import logstash
from tests.support.lines import LINE
from tests.support.workers import run_burst_worker

PAGE = 4096


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 KiB tmpfs, unmounted afterwards."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16k", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    assert mounted.returncode == 0, f"these tests mount a 16 KiB tmpfs and need root: {mounted.stderr.strip()}"
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def fill(path: Path) -> int:
    """Write to ``path`` until the file system is full; the bytes written."""
    written = 0
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    try:
        while True:
            try:
                count = os.write(fd, b"x" * 512)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc
                return written
            written += count
            if count < 512:
                return written
    finally:
        os.close(fd)


def line_for(task: str, seconds: float = 1.0) -> str:
    execution = TaskRun(task, seconds, "default", "finished", 0.5, f"job-{task}", "w-1")
    return TaskLineFormatter().line(1_763_000_000.0, format_fields(execution))


def assert_lines_kept_apart(data: bytes, fragments: int) -> list[str]:
    """Every line is one whole execution or a fragment of one; returns the fragments."""
    assert data.endswith(b"\n")
    pipeline = logstash.Pipeline(environ={})
    found = []
    for text in data.decode("utf-8").split("\n")[:-1]:
        assert text.count("Time: ") <= 1, f"two executions in one line: {text!r}"
        event = pipeline.run(text)
        if LINE.fullmatch(text):
            assert "tags" not in event, text
        else:
            found.append(text)
            assert "task_time_unparsed" in event["tags"], text  # kept, in "Unparsed lines"
    assert len(found) == fragments, found
    return found


@pytest.mark.jvm
def test_a_line_cut_short_by_a_full_disk_is_not_glued_to_the_next(small_disk: Path) -> None:
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"b" * PAGE)  # freed later, as an operator frees space
    log = small_disk / "task-time.log"
    handler = TaskLogHandler(log)
    written = 0
    while not log.exists() or log.read_bytes().endswith(b"\n"):
        written += 1
        assert written < 1000, "the file system never filled up"
        handler.write_line(line_for(f"jobs.before{written}"))
    assert log.stat().st_size % PAGE == 0  # cut short where the last page ended
    handler.write_line(line_for("jobs.refused"))  # no space at all: nothing written
    ballast.unlink()
    handler.write_line(line_for("jobs.after"))
    handler.write_line(line_for("jobs.after2"))
    handler.close()

    [fragment] = assert_lines_kept_apart(log.read_bytes(), fragments=1)
    assert line_for(f"jobs.before{written}").startswith(fragment)
    lines = log.read_text().split("\n")
    assert lines[-3:] == [line_for("jobs.after"), line_for("jobs.after2"), ""]


@pytest.mark.redis
@pytest.mark.jvm
def test_a_horse_cut_short_does_not_corrupt_the_next_horses_line(
    small_disk: Path, redis: Redis, redis_url: str
) -> None:
    log = small_disk / "task-time.log"
    # A log that ends 60 bytes before its page does, and no page left: the next line,
    # written by a work horse (a process of its own), is cut after 60 bytes.
    good = line_for("jobs.earlier") + "\n"
    log.write_text(good * ((PAGE - 60) // len(good)))
    with log.open("a") as file:
        file.write("#" * ((PAGE - 60) % len(good) - 1) + "\n")
    ballast = small_disk / "ballast"
    fill(ballast)
    assert log.stat().st_size == PAGE - 60

    queue = Queue("default", connection=redis)
    queue.enqueue(tasks.no_op)
    first = run_burst_worker(redis_url, log)
    assert first.returncode == 0, first.stderr
    assert "pipeline.task_time: cannot write" in first.stderr
    assert not log.read_bytes().endswith(b"\n")

    ballast.unlink()
    jobs = [queue.enqueue(tasks.no_op) for _ in range(2)]
    second = run_burst_worker(redis_url, log)
    assert second.returncode == 0, second.stderr

    data = log.read_bytes()
    [fragment] = assert_lines_kept_apart(data[PAGE - 60 :], fragments=1)
    assert fragment.startswith("Time: ") and len(fragment.encode()) == 60
    tail = data.decode().split("\n")[-3:-1]
    assert [LINE.fullmatch(text).group("job") for text in tail] == [job.id for job in jobs]  # type: ignore[union-attr]
