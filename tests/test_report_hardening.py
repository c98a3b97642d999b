"""Issue 16, the report's part: no input crashes it, its output failures are one line and a code,
its inputs are what was asked for, once, what it prints is escaped, Redis shows, gzip damage is placed.

Pure Python (the report as a subprocess, as users run it): no service.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import socket
import subprocess
import sys
import time
import zlib
from pathlib import Path

import pytest

from pipeline.lines import queue as monitor_line
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import SECONDS_LIMIT
from pipeline.lines.task import TaskRun, format_fields
from pipeline.report.queues import QueueLines
from pipeline.report.reader import Tally
from pipeline.report.selection import Selection
from tests.support.monitor import QUEUE_VALUES
from tests.test_report import EXECUTIONS, REPO, report, write_log

pytestmark = [pytest.mark.unit]

STAMP = "Time: 2026-11-21 23:48:57,244"


def strict(text: str | bytes) -> dict:
    """JSON as a strict parser reads it: NaN, Infinity and -Infinity are refused."""

    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def no_traceback(done: subprocess.CompletedProcess) -> None:
    assert b"Traceback" not in done.stderr, done.stderr.decode()


def task_line(seconds: str, wait: str | None = None, task: str = "a") -> str:
    line = f"{STAMP} Task: {task} Task-time: {seconds}"
    return line if wait is None else f"{line} Queue: q Status: finished Wait-time: {wait}"


# ----------------------------------------------------------------------- 1. values beyond the limit


def test_a_sum_that_would_overflow_is_no_crash_the_lines_are_unparsed(tmp_path: Path) -> None:
    log = tmp_path / "o.log"
    log.write_text(task_line("1e308") + "\n" + task_line("1e308") + "\n")
    done = report(str(log))
    no_traceback(done)
    assert done.returncode == 0
    assert "2 lines: 0 parsed, 2 unparsed" in done.stdout.decode()


def test_infinite_values_are_unparsed_and_the_json_is_strict(tmp_path: Path) -> None:
    log = tmp_path / "inf.log"
    lines = [
        task_line("1e999"),
        task_line("-1e999"),
        task_line("1.000000", wait="1e999", task="b"),
        task_line("1.000000", wait="-1e999", task="b"),
        task_line("2.000000", task="c"),
    ]
    log.write_text("\n".join(lines) + "\n")
    for format_name in ("json", "table", "csv"):
        done = report(str(log), "--format", format_name)
        no_traceback(done)
        assert done.returncode == 0
    document = strict(report(str(log), "--format", "json").stdout)
    assert (document["lines"], document["parsed"], document["unparsed"]) == (5, 1, 4)
    assert [task["task"] for task in document["tasks"]] == ["c"]


@pytest.mark.parametrize("scan", ["fast", "filtered", "local zone"])
def test_the_limit_is_inclusive_and_the_same_on_every_path(scan: str) -> None:
    """The limit holds whichever scan reads the chunk: unfiltered UTC, filtered, another zone."""
    limit = f"{SECONDS_LIMIT:.0f}"
    taken = [limit, f"-{limit}", f"{limit}.000000", "1e15", "1E+15", "-1e15", "999999999999999.999999", "1e-400"]
    refused = ["1000000000000001", "1.0000000000000002e15", "1e16", "1e308", "1e999", "-1e999", "-1000000000000000.5"]
    texts = [task_line(value) for value in taken + refused]
    texts += [task_line("1.000000", wait=value) for value in taken + refused]
    clock = LineClock() if scan != "local zone" else LineClock(__import__("zoneinfo").ZoneInfo("Europe/Paris"))
    selection = Selection(queues=frozenset({"q"})) if scan == "filtered" else Selection()
    for text in texts:
        tally = Tally(clock=clock, selection=selection, keep_unparsed=1)
        tally.feed(text.encode() + b"\n", "x", 1)
        value = text.split(": ")[-1]
        assert tally.parsed + tally.unparsed == tally.lines == 1
        assert tally.parsed == (value in taken), text
        if tally.unparsed:
            assert tally.unparsed_samples[0].text == text and tally.unparsed_samples[0].number == 1


def test_lines_beyond_the_limit_among_good_ones_keep_counts_and_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "mixed.log"
    good = write_log(log, EXECUTIONS)
    bad = [task_line("1e999"), task_line("2e15", task="x")]
    mixed = [*good[:3], bad[0], *good[3:7], bad[1], *good[7:]]
    log.write_text("\n".join(mixed) + "\n")
    done = report(str(log), "--format", "json", "--show-unparsed", "5")
    document = strict(done.stdout)
    assert (document["parsed"], document["unparsed"]) == (len(good), 2)
    shown = done.stderr.decode().splitlines()[-2:]
    assert shown == [f"{log}:4: {bad[0]}", f"{log}:9: {bad[1]}"]
    clean = tmp_path / "clean.log"
    write_log(clean, EXECUTIONS)
    assert strict(report(str(clean), "--format", "json").stdout)["tasks"] == document["tasks"]


def test_every_figure_stays_finite_at_the_limit_and_shares_when_times_cancel_out(tmp_path: Path) -> None:
    log = tmp_path / "edge.log"
    limit = f"{SECONDS_LIMIT:.0f}"
    lines = [task_line(limit, wait=limit, task="big") for _ in range(1000)]
    lines += [task_line(f"-{limit}", task="minus") for _ in range(1000)]
    lines += [task_line("1e-300", task="tiny")]
    log.write_text("\n".join(lines) + "\n")
    for by in ("total", "p95", "max", "count", "wait"):
        done = report(str(log), "--format", "json", "--by", by)
        no_traceback(done)
        document = strict(done.stdout)
        rows = {row["task"]: row for row in document["tasks"]}
        assert rows["big"]["total"] == 1000 * SECONDS_LIMIT and rows["big"]["wait_mean"] == SECONDS_LIMIT
        # The grand total is 1e-300: big's and minus's shares are no number, tiny's is all of it.
        assert (rows["big"]["share"], rows["minus"]["share"], rows["tiny"]["share"]) == (0.0, 0.0, 1.0)
        assert report(str(log), "--by", by).returncode == 0


def test_json_is_strict_on_the_golden_lines() -> None:
    done = report(str(REPO / "tests" / "golden" / "task-time.log"), "--format", "json")
    no_traceback(done)
    strict(done.stdout)


# ----------------------------------------------------------------------- 2. output that cannot be written


def test_a_full_disk_is_one_line_and_exit_3(tmp_path: Path) -> None:
    log = tmp_path / "good.log"
    write_log(log)
    for format_name in ("table", "json", "csv"):
        with open("/dev/full", "wb") as full:
            done = subprocess.run(
                [sys.executable, "-m", "pipeline.report", str(log), "--format", format_name],
                stdout=full,
                stderr=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                cwd=REPO,
                env={**os.environ, "PYTHONPATH": str(REPO)},
                timeout=120,
            )
        no_traceback(done)
        assert done.returncode == 3
        assert done.stderr.decode().splitlines() == [
            "rq-task-time-report: cannot write the report: No space left on device"
        ]


def test_a_closed_pipe_is_one_line_and_exit_3(tmp_path: Path) -> None:
    log = tmp_path / "good.log"
    write_log(log)
    for args in ([], ["--show-unparsed", "3"]):
        process = subprocess.Popen(
            [sys.executable, "-m", "pipeline.report", str(log), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader is gone before the report writes: like `| head` that has had enough
        stderr = process.stderr.read()
        assert process.wait(120) == 3
        assert b"Traceback" not in stderr
        assert stderr.decode().splitlines() == ["rq-task-time-report: cannot write the report: Broken pipe"]


def test_messages_that_cannot_be_written_do_not_change_the_code(tmp_path: Path) -> None:
    """stderr full or closed: the report is still written, and the exit code still says what happened."""
    log = tmp_path / "good.log"
    write_log(log)
    environ = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "pipeline.report", str(tmp_path / "gone.log"), str(log), "--format", "json"]
    with open("/dev/full", "wb") as full:
        done = subprocess.run(command, stdout=subprocess.PIPE, stderr=full, cwd=REPO, env=environ, timeout=120)
    assert done.returncode == 2
    assert strict(done.stdout)["lines"] == len(EXECUTIONS)
    with open("/dev/full", "wb") as full:
        done = subprocess.run([*command[:-3], str(log)], stdout=full, stderr=full, cwd=REPO, env=environ, timeout=120)
    assert done.returncode == 3


def test_exit_3_is_documented() -> None:
    help_text = report("--help").stdout.decode()
    assert "3 the report could not be written" in " ".join(help_text.split())
    from pipeline.report import cli

    assert "3 the report could not be written" in " ".join((cli.__doc__ or "").split())
    assert "**3** the report could not be written" in (REPO / "docs" / "report.md").read_text()


# ----------------------------------------------------------------------- 3. inputs


def _bare(env: dict[str, str], stdin: object) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **env}
    environ.pop("TASK_TIME_TZ", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.report", "--format", "json"],
        stdin=stdin,
        capture_output=True,
        env=environ,
        cwd=REPO,
        timeout=60,
    )


def test_without_a_name_the_log_is_read_even_with_an_empty_pipe_on_stdin(tmp_path: Path) -> None:
    """Under cron stdin is an empty pipe: the report still reads TASK_TIME_LOG."""
    live = tmp_path / "task-time.log"
    write_log(live)
    read, write = os.pipe()
    os.close(write)
    try:
        done = _bare({"TASK_TIME_LOG": str(live)}, read)
    finally:
        os.close(read)
    assert done.returncode == 0, done.stderr
    assert strict(done.stdout)["lines"] == len(EXECUTIONS)


def test_without_a_name_an_open_socket_on_stdin_is_not_waited_for(tmp_path: Path) -> None:
    """Over ssh stdin is a socket that stays open: the report reads TASK_TIME_LOG and ends."""
    live = tmp_path / "task-time.log"
    write_log(live)
    mine, theirs = socket.socketpair()
    try:
        started = time.monotonic()
        done = _bare({"TASK_TIME_LOG": str(live)}, theirs.fileno())
        assert time.monotonic() - started < 30
    finally:
        mine.close()
        theirs.close()
    assert done.returncode == 0, done.stderr
    assert strict(done.stdout)["lines"] == len(EXECUTIONS)


def test_dash_reads_stdin(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    write_log(log)
    done = report("-", "--format", "json", stdin=log.read_bytes())
    assert strict(done.stdout)["lines"] == len(EXECUTIONS)
    done = report("-", "-", "--format", "json", stdin=log.read_bytes())
    assert strict(done.stdout)["lines"] == len(EXECUTIONS)


def test_task_time_log_may_name_a_folder(tmp_path: Path) -> None:
    write_log(tmp_path / "task-time.log", EXECUTIONS[:3])
    write_log(tmp_path / "task-time.log.1", EXECUTIONS[3:5])
    write_log(tmp_path / "other.log", EXECUTIONS[5:6])
    done = report("--format", "json", env={"TASK_TIME_LOG": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert strict(done.stdout)["lines"] == 6  # every log in it, as when the folder is named
    empty = tmp_path / "empty"
    empty.mkdir()
    done = report(env={"TASK_TIME_LOG": str(empty)})
    assert done.returncode == 2 and f"no task-time logs in {empty}" in done.stderr.decode()


def test_a_file_named_twice_directly_or_through_a_folder_or_a_link_is_read_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "task-time.log"
    write_log(live)
    write_log(logs / "task-time.log.1", EXECUTIONS[:2])
    link = tmp_path / "link.log"
    link.symlink_to(live)
    whole = len(EXECUTIONS) + 2
    for names in (
        [str(live), str(live)],
        [str(logs), str(live)],
        [str(live), str(logs)],
        [str(logs), str(logs)],
        [str(logs), str(link)],
        [str(logs), str(logs / ".." / "logs" / "task-time.log")],
    ):
        done = report(*names, "--format", "json")
        assert done.returncode == 0, (names, done.stderr)
        lines = strict(done.stdout)["lines"]
        assert lines == whole if str(logs) in names else lines == len(EXECUTIONS), names
    gone = tmp_path / "gone.log"
    done = report(str(gone), str(gone), str(live))
    assert done.returncode == 2
    assert done.stderr.decode().count("No such file or directory") == 1


def test_help_says_what_is_read_without_a_name() -> None:
    help_text = " ".join(report("--help").stdout.decode().split())
    assert "whatever stdin is; - reads stdin" in help_text
    assert "read once" in help_text


# ----------------------------------------------------------------------- 4. terminal safety


def test_unparsed_lines_and_file_names_are_escaped(tmp_path: Path) -> None:
    folder = tmp_path / "evil\x1b]0;owned\x07"
    folder.mkdir()
    log = folder / "task-time\x1b[2J.log"
    log.write_bytes(
        f"{task_line('1.000000')}\n".encode() + b"\x1b[31mred\x1b[0m \xc2\x9b6n\r\n" + b"Time: x Task: \xff\x1b[1m\n"
    )
    for format_name in ("table", "json"):
        done = report(str(log), "--show-unparsed", "5", "--format", format_name)
        out = done.stdout + done.stderr
        assert b"\x1b" not in out and b"\x07" not in out and b"\x9b" not in out.replace(b"\\x9b", b"")
        assert b"\r" not in out
        text = out.decode()
        assert "\\x1b[31mred\\x1b[0m \\x9b6n\\r" in text
        assert "Time: x Task: \ufffd\\x1b[1m" in text
        assert "evil\\x1b]0;owned\\x07/task-time\\x1b[2J.log:2:" in text
    missing = folder / "gone\x1b[5m.log"
    done = report(str(missing), str(log))
    assert b"\x1b" not in done.stderr
    assert "gone\\x1b[5m.log" in done.stderr.decode()
    damaged = folder / "cut\x1b[7m.gz"
    damaged.write_bytes(gzip.compress(log.read_bytes() * 100)[:-20])
    done = report(str(damaged))
    assert done.returncode == 1 and b"\x1b" not in done.stderr and "cut\\x1b[7m.gz" in done.stderr.decode()


def test_undecodable_file_names_are_escaped(tmp_path: Path) -> None:
    name = os.fsencode(tmp_path) + b"/bad\xff\x1b.log"
    with open(name, "wb") as out:
        out.write(b"not a task line\n")
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.report", name, "--show-unparsed", "1"],
        capture_output=True,
        stdin=subprocess.DEVNULL,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
    )
    assert done.returncode == 0
    assert b"\x1b" not in done.stdout and b"bad\\udcff\\x1b.log:1: not a task line" in done.stdout


# ----------------------------------------------------------------------- 5. Redis and error lines


def monitor(timestamp: float, status: str, kind: str, values: dict, reason: str = "") -> str:
    return format_line(timestamp, monitor_line.format_fields("m.1", status, kind, values, reason), LineClock())


def redis_values(used: int, maximum: int, **values: object) -> dict:
    base = {"redis": "redis:6379/0", "used_memory": used, "maxmemory": maximum, "memory_used_pct": 100 * used / maximum}
    base |= {"maxmemory_policy": "noeviction", "evicted_keys": 0, "oom_rejections": 0, "suspended": False}
    return base | {"sample_time": 0.001} | values


def test_redis_lines_and_error_lines_show_in_the_table_and_the_json(tmp_path: Path) -> None:
    now = time.time()
    lines = [
        monitor(now - 300, "ok", "redis", redis_values(10, 100), ""),
        monitor(now - 200, "critical", "redis", redis_values(95, 100, oom_rejections=4), "memory 95.0% >= 90%"),
        monitor(now - 100, "warn", "redis", redis_values(85, 100), "memory 85.0% >= 80%"),
        monitor(now - 90, "critical", "error", {"redis": "redis:6379/0", "error": "unreachable"}, "Connection refused"),
        # The monitor writes reasons printable; a line written by hand need not be.
        monitor(now - 80, "critical", "error", {"redis": "redis:6379/0", "error": "auth"}, "WRONGPASS") + " \x1b[31m",
        monitor(now - 70, "critical", "error", {"redis": "other:6379/1", "error": "unreachable"}, "Name unknown"),
        monitor(now - 60, "ok", "queue", {**QUEUE_VALUES, "queue": "default", "depth": 0, "latency": 0.0}),
    ]
    (tmp_path / "queue-monitor.log").write_text("\n".join(lines) + "\n")
    done = report(str(tmp_path), "--format", "json")
    document = strict(done.stdout)
    assert (document["parsed"], document["unparsed"]) == (7, 0)
    assert [queue["queue"] for queue in document["queues"]] == ["default"]  # the queue table is as it was
    assert [redis["redis"] for redis in document["redis"]] == ["other:6379/1", "redis:6379/0"]
    other, main = document["redis"]
    assert (other["status"], other["memory_used_pct"], other["samples"], other["errors"]) == (None, None, 0, 1)
    assert (other["error"], other["error_reason"]) == ("unreachable", "Name unknown")
    assert (main["status"], main["memory_used_pct"], main["worst_memory_used_pct"]) == ("warn", 85.0, 95.0)
    assert (main["used_memory"], main["maxmemory"], main["policy"], main["evicted"]) == (85, 100, "noeviction", 0)
    assert (main["oom_rejected"], main["suspended"], main["samples"]) == (0, False, 3)
    assert main["reason"] == "memory 85.0% >= 80%"
    assert (main["errors"], main["error"], main["error_reason"]) == (2, "auth", "WRONGPASS \x1b[31m")
    assert main["last"].endswith("Z") and main["error_last"] > main["last"]
    table = report(str(tmp_path)).stdout.decode()
    assert "\x1b" not in table and "WRONGPASS \\x1b[31m" in table
    [row] = [line for line in table.splitlines() if line.startswith("redis:6379/0 ")]
    assert row.split()[1:4] == ["warn", "85.0", "%"] and " 2 " in row and "auth" in row
    assert "other:6379/1: last error unreachable: Name unknown" in table
    since = strict(report(str(tmp_path), "--format", "json", "--since", "150s").stdout)
    [recent_main] = [redis for redis in since["redis"] if redis["redis"] == "redis:6379/0"]
    assert (recent_main["samples"], recent_main["worst_memory_used_pct"]) == (1, 85.0)  # --since applies


def test_a_monitor_figure_that_is_not_finite_leaves_the_line_unparsed() -> None:
    reader = QueueLines(LineClock())
    huge = "9" * 400 + ".0"
    queue = monitor(0, "ok", "queue", {**QUEUE_VALUES, "queue": "q", "depth": 0, "latency": 1.0})
    assert reader.offer(queue.encode())
    assert not reader.offer(queue.replace("Latency: 1.000000", f"Latency: {huge}").encode())
    redis = monitor(0, "ok", "redis", redis_values(1, 2))
    assert reader.offer(redis.encode())
    assert not reader.offer(redis.replace("Sample-time: 0.001000", f"Sample-time: {huge}").encode())
    assert not reader.offer(redis.replace("Memory-used: 50.00", f"Memory-used: {huge}").encode())


# ----------------------------------------------------------------------- 6. where a gzip is damaged


def test_a_corrupt_gzip_is_reported_at_the_compressed_offset_of_the_damage(tmp_path: Path) -> None:
    rng = random.Random(16)
    # Over 1 MiB compressed, so the damage is in the first of several read chunks.
    text = "".join(
        format_line(1.8e9 + i, format_fields(TaskRun(f"jobs.t{rng.getrandbits(64):x}", rng.random())), LineClock())
        + "\n"
        for i in range(60_000)
    )
    whole = gzip.compress(text.encode())
    assert len(whole) > 1 << 20
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(whole[:100] + bytes(200) + whole[300:])
    done = report(str(damaged))
    assert done.returncode == 1
    [message] = done.stderr.decode().splitlines()
    offset = int(message.split("corrupt after ")[1].split()[0])
    assert 100 <= offset < 300, message  # not the 1 MiB read so far
    # Exactly what zlib allows: the decompressor takes offset bytes and fails on the next one.
    data = damaged.read_bytes()
    zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[:offset])
    with pytest.raises(zlib.error):
        zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(data[: offset + 1])
    # In a later member of a concatenated file, the offset counts from the start of the file.
    first = gzip.compress(b"".join([task_line("1.0").encode() + b"\n"] * 10))
    later = tmp_path / "later.gz"
    later.write_bytes(first + whole[:100] + bytes(200) + whole[300:])
    [message] = report(str(later)).stderr.decode().splitlines()
    assert int(message.split("corrupt after ")[1].split()[0]) == len(first) + offset
