"""``python -m pipeline.report`` as users run it: options, inputs, bad input, real workers' logs."""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.task import TaskRun, format_fields, read_line
from pipeline.report.cli import Progress
from pipeline.report.reader import Tally
from pipeline.report.text import human
from tests import tasks
from tests.support import logstash
from tests.support.workers import read_lines, run_burst_worker, worker_env

REPO = Path(__file__).resolve().parents[1]
TASK_KEYS = ["task", "executions", "total", "share", "mean", "p50", "p95", "p99", "max", "failed", "timeout",
             "killed", "retry", "wait_mean", "wait_p95"]  # fmt: skip
START = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()

# (task, task time, queue, status, wait time) per execution, one minute apart from START.
EXECUTIONS = (
    [("jobs.fast", 0.01 * (i + 1), "default", "finished", 0.001 * i) for i in range(10)]
    + [("jobs.slow", 5.0, "high", "finished", 1.0), ("jobs.slow", 6.0, "high", "timeout", 2.0)]
    + [("jobs.slow", 7.0, "high", "killed", 3.0)]
    + [("jobs.flaky", 0.5, "default", status, None) for status in ("failed", "finished", "failed", "finished")]
    + [("send mail\nnow", 0.2, "q q", "finished", 0.4)]
)


def write_log(path: Path, executions=EXECUTIONS, start: float = START, extra: str = "") -> list[str]:
    clock = LineClock()
    lines = [
        format_line(start + 60 * index, format_fields(TaskRun(task, seconds, queue, status, wait, "j", "w")), clock)
        for index, (task, seconds, queue, status, wait) in enumerate(executions)
    ]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")
    return lines


def report(*args: str, env: dict[str, str] | None = None, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    if env is None or "TASK_TIME_TZ" not in env:
        environ.pop("TASK_TIME_TZ", None)
    return subprocess.run(
        [sys.executable, "-m", "pipeline.report", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        env=environ,
        cwd=REPO,
        timeout=120,
    )


def report_json(*args: str, **kwargs) -> dict:
    done = report(*args, "--format", "json", **kwargs)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def expected_row(task: str, executions=EXECUTIONS) -> dict:
    mine = [e for e in executions if e[0] == task]
    times = [e[1] for e in mine]
    waits = [e[4] for e in mine if e[4] is not None]
    grand = math.fsum(e[1] for e in executions)

    def percentile(values: list[float], percent: int) -> float:
        return statistics.quantiles(values, n=100, method="inclusive")[percent - 1] if len(values) > 1 else values[0]

    return {
        "task": task,
        "executions": len(mine),
        "total": math.fsum(times),
        "share": math.fsum(times) / grand,
        "mean": math.fsum(times) / len(times),
        "p50": percentile(times, 50),
        "p95": percentile(times, 95),
        "p99": percentile(times, 99),
        "max": max(times),
        "failed": sum(e[3] == "failed" for e in mine),
        "timeout": sum(e[3] == "timeout" for e in mine),
        "killed": sum(e[3] == "killed" for e in mine),
        "retry": sum(e[3] == "retry" for e in mine),
        "wait_mean": math.fsum(waits) / len(waits) if waits else None,
        "wait_p95": percentile(waits, 95) if waits else None,
    }


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "task-time.log"
    write_log(path)
    return path


@pytest.mark.unit
def test_json_is_the_documented_schema_with_every_figure(log: Path) -> None:
    document = report_json(str(log))
    assert list(document) == ["tasks", "lines", "parsed", "unparsed", "first", "last", "queues", "redis"]
    assert document["queues"] == [] and document["redis"] == []  # no queue-monitor lines read
    assert (document["lines"], document["parsed"], document["unparsed"]) == (len(EXECUTIONS), len(EXECUTIONS), 0)
    assert document["first"] == "2026-11-21T10:00:00.000Z"
    assert document["last"] == f"2026-11-21T10:{len(EXECUTIONS) - 1:02d}:00.000Z"
    names = [row["task"] for row in document["tasks"]]
    assert names == ["jobs.slow", "jobs.flaky", "jobs.fast", "send mail\nnow"]  # by total, decoded exactly
    for row in document["tasks"]:
        assert list(row) == TASK_KEYS
        wanted = expected_row(row["task"])
        assert row["task"] == wanted.pop("task")
        for key, value in wanted.items():
            assert row[key] == (value if value is None else pytest.approx(value, rel=1e-12)), (row["task"], key)
        assert all(isinstance(row[key], float) for key in ("total", "mean", "p50", "p95", "p99", "max"))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("by", "order"),
    [
        ("total", ["jobs.slow", "jobs.flaky", "jobs.fast", "send mail\nnow"]),
        ("count", ["jobs.fast", "jobs.flaky", "jobs.slow", "send mail\nnow"]),
        ("max", ["jobs.slow", "jobs.flaky", "send mail\nnow", "jobs.fast"]),
        ("p95", ["jobs.slow", "jobs.flaky", "send mail\nnow", "jobs.fast"]),
        ("wait", ["jobs.slow", "send mail\nnow", "jobs.fast", "jobs.flaky"]),  # flaky has no wait times
    ],
)
def test_by_ranks_largest_first(log: Path, by: str, order: list[str]) -> None:
    assert [row["task"] for row in report_json(str(log), "--by", by)["tasks"]] == order


@pytest.mark.unit
def test_top_keeps_the_first_rows_and_the_table_says_how_many_there_are(tmp_path: Path) -> None:
    path = tmp_path / "task-time.log"
    write_log(path, [(f"jobs.t{index:02d}", float(index + 1), "q", "finished", None) for index in range(25)])
    document = report_json(str(path), "--top", "3")
    assert [row["task"] for row in document["tasks"]] == ["jobs.t24", "jobs.t23", "jobs.t22"]
    assert document["tasks"][0]["share"] == pytest.approx(25 / sum(range(1, 26)))  # share of all tasks
    assert len(report_json(str(path))["tasks"]) == 25  # json: all by default
    table = report(str(path)).stdout.decode()
    assert "top 20 of 25 tasks" in table and "jobs.t05" in table and "jobs.t04" not in table
    assert "jobs.t00" in report(str(path), "--top", "0").stdout.decode()


@pytest.mark.unit
def test_since_and_until_take_iso_times_in_the_log_zone(log: Path) -> None:
    document = report_json(str(log), "--since", "2026-11-21T10:10", "--until", "2026-11-21 10:13:00Z")
    assert [row["task"] for row in document["tasks"]] == ["jobs.slow"]
    assert document["tasks"][0]["executions"] == 3
    assert (document["first"], document["last"]) == ("2026-11-21T10:10:00.000Z", "2026-11-21T10:12:00.000Z")
    assert document["lines"] == document["parsed"] == len(EXECUTIONS)  # what was read, filtered or not
    # A naive time is in TASK_TIME_TZ: 11:10 in Paris is 10:10 UTC.
    paris = report_json(str(log), "--since", "2026-11-21T11:10", env={"TASK_TIME_TZ": "Europe/Paris"})
    assert paris["first"] is None  # the log itself was written in UTC, so Paris reads it an hour later...
    assert report_json(str(log), "--since", "2026-11-21T11:10:00+01:00")["first"] == "2026-11-21T10:10:00.000Z"


@pytest.mark.unit
def test_since_takes_relative_times(tmp_path: Path) -> None:
    path = tmp_path / "task-time.log"
    now = time.time()
    rows = [("jobs.old", 1.0, "q", "finished", None), ("jobs.recent", 2.0, "q", "finished", None)]
    write_log(path, rows, start=now - 7200 + 60 * 0)  # old: two hours ago
    with path.open("a") as out:
        out.write(format_line(now - 600, format_fields(TaskRun("jobs.recent", 2.0)), LineClock()) + "\n")
    assert [row["task"] for row in report_json(str(path), "--since", "1h")["tasks"]] == ["jobs.recent"]
    assert {row["task"] for row in report_json(str(path), "--since", "3h")["tasks"]} == {"jobs.old", "jobs.recent"}
    assert [row["task"] for row in report_json(str(path), "--until", "30m")["tasks"]] == ["jobs.recent", "jobs.old"]
    bad = report(str(path), "--since", "yesterday")
    assert bad.returncode == 2 and bad.stderr.decode().count("\n") == 1 and "yesterday" in bad.stderr.decode()


@pytest.mark.unit
def test_queue_and_status_select_by_decoded_names(log: Path) -> None:
    [row] = report_json(str(log), "--queue", "q q")["tasks"]
    assert row["task"] == "send mail\nnow"
    rows = report_json(str(log), "--status", "failed", "--status", "timeout")["tasks"]
    assert {(row["task"], row["executions"]) for row in rows} == {("jobs.flaky", 2), ("jobs.slow", 1)}
    rows = report_json(str(log), "--queue", "high", "--status", "killed")["tasks"]
    assert [(row["task"], row["executions"], row["killed"]) for row in rows] == [("jobs.slow", 1, 1)]
    assert report(str(log), "--status", "running").returncode == 2


@pytest.mark.unit
def test_csv_has_the_json_keys_and_values(log: Path) -> None:
    done = report(str(log), "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(done.stdout.decode())))
    assert list(rows[0]) == TASK_KEYS
    document = report_json(str(log))
    for row, wanted in zip(rows, document["tasks"], strict=True):
        assert row["task"] == wanted["task"]
        for key in TASK_KEYS[1:]:
            assert (float(row[key]) if row[key] else None) == wanted[key], key


@pytest.mark.unit
def test_the_table_is_aligned_human_and_plain(log: Path) -> None:
    done = report(str(log))
    assert done.returncode == 0 and done.stderr == b""
    text = done.stdout.decode()
    assert "\x1b" not in text  # no colour, no cursor codes when not a terminal
    lines = text.split("\n")
    header, rows = lines[0], lines[1:5]
    assert header.split()[:3] == ["task", "runs", "total"]
    assert len({len(line) for line in [header, *rows]}) == 1  # right-aligned columns end together
    assert rows[0].startswith("jobs.slow") and " 18 s " in rows[0] and "1 " in rows[0]
    assert any(row.startswith("send mail\\nnow") for row in rows)  # escaped, so the row stays one row
    assert "4 tasks by total; 18 lines: 18 parsed, 0 unparsed" in text
    assert "from 2026-11-21T10:00:00.000Z to 2026-11-21T10:17:00.000Z" in text


@pytest.mark.unit
@pytest.mark.parametrize(
    ("seconds", "text"),
    [(1.2, "1.2 s"), (0.34, "340 ms"), (150, "2.5 min"), (0.0000034, "3.4 µs"), (0, "0 s"), (0.9997, "1 s"),
     (7200, "2 h"), (-0.002, "-2 ms"), (None, "-")],
)  # fmt: skip
def test_human_durations(seconds: float | None, text: str) -> None:
    assert human(seconds) == text


@pytest.mark.unit
def test_unparsed_lines_are_counted_and_shown_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "task-time.log"
    write_log(path, EXECUTIONS[:3], extra="Traceback (most recent call last):\nTime: 2026-02-30 10:00:00,000 Task: x "
              "Task-time: 1\n")  # fmt: skip
    done = report(str(path), "--show-unparsed", "5")
    assert done.returncode == 0
    text = done.stdout.decode()
    assert "5 lines: 3 parsed, 2 unparsed" in text
    assert f"{path}:4: Traceback (most recent call last):" in text
    assert f"{path}:5: Time: 2026-02-30 10:00:00,000 Task: x Task-time: 1" in text
    document = report_json(str(path), "--show-unparsed", "1")
    assert document["unparsed"] == 2  # the shown lines go to stderr with --format json
    assert f"{path}:4: Traceback" in report(str(path), "--show-unparsed", "1", "--format", "json").stderr.decode()


@pytest.mark.unit
def test_default_input_is_task_time_log_and_its_rotated_names(tmp_path: Path) -> None:
    live = tmp_path / "task-time.log"
    write_log(live, EXECUTIONS[:2])
    write_log(tmp_path / "task-time.log.1", EXECUTIONS[2:5])
    rotated = tmp_path / "task-time.log.2.gz"
    write_log(tmp_path / "plain", EXECUTIONS[5:9])
    rotated.write_bytes(gzip.compress((tmp_path / "plain").read_bytes()))
    write_log(tmp_path / "other.log", EXECUTIONS[9:10])  # another log in the folder: not a sibling
    document = report_json(env={"TASK_TIME_LOG": str(live)})
    assert document["lines"] == 9
    assert report_json(str(tmp_path))["lines"] == 10  # a folder: all its logs


@pytest.mark.unit
def test_stdin_when_named_dash(log: Path, tmp_path: Path) -> None:
    data = log.read_bytes()
    assert report_json("-", stdin=data)["lines"] == len(EXECUTIONS)
    assert report_json("-", stdin=gzip.compress(data))["lines"] == len(EXECUTIONS)
    # Without a name, TASK_TIME_LOG is read whatever stdin is (issue 16; tests/test_report_hardening.py).
    write_log(tmp_path / "task-time.log", EXECUTIONS[:2])
    assert report_json(stdin=data, env={"TASK_TIME_LOG": str(tmp_path / "task-time.log")})["lines"] == 2


@pytest.mark.unit
def test_compressed_files_are_recognised_by_content(tmp_path: Path, log: Path) -> None:
    (tmp_path / "no-suffix").write_bytes(gzip.compress(log.read_bytes()) + gzip.compress(log.read_bytes()))
    assert report_json(str(tmp_path / "no-suffix"))["lines"] == 2 * len(EXECUTIONS)  # two gzip members


@pytest.mark.unit
def test_a_missing_or_unreadable_file_is_skipped_said_and_exit_2(tmp_path: Path, log: Path) -> None:
    missing = tmp_path / "gone.log"
    not_a_file = log / "x.log"
    done = report(str(missing), str(log), str(not_a_file), "--format", "json")
    assert done.returncode == 2
    assert json.loads(done.stdout)["lines"] == len(EXECUTIONS)  # the readable file is still reported
    errors = done.stderr.decode().splitlines()
    assert errors[0] == f"rq-task-time-report: cannot read {missing}: No such file or directory (skipped)"
    assert errors[1].startswith(f"rq-task-time-report: cannot read {not_a_file}: ")
    assert errors[-1] == f"rq-task-time-report: the report leaves out 2 input(s): {missing}, {not_a_file}"
    empty = tmp_path / "empty-folder"
    empty.mkdir()
    done = report(str(empty))
    assert done.returncode == 2 and f"no task-time logs in {empty}" in done.stderr.decode()
    done = report(env={"TASK_TIME_LOG": str(tmp_path / "nowhere" / "task-time.log")})
    assert done.returncode == 2 and "no task-time log at" in done.stderr.decode().splitlines()[0]


@pytest.mark.unit
def test_a_truncated_gz_counts_what_it_could_read_says_so_and_exits_1(tmp_path: Path, log: Path) -> None:
    whole = gzip.compress(log.read_bytes() * 50)
    damaged = tmp_path / "task-time.log.1.gz"
    damaged.write_bytes(whole[: len(whole) * 2 // 3])
    done = report(str(damaged), str(log), "--format", "json")
    assert done.returncode == 1
    document = json.loads(done.stdout)
    [message] = done.stderr.decode().splitlines()
    assert message.startswith(f"rq-task-time-report: {damaged}: compressed data ends early (truncated): read ")
    whole_lines = int(message.split("read ")[1].split()[0])
    assert 0 < whole_lines < 50 * len(EXECUTIONS)
    assert document["parsed"] == whole_lines + len(EXECUTIONS)  # the cut line is counted, unparsed
    assert document["lines"] == document["parsed"] + document["unparsed"] and document["unparsed"] <= 1
    corrupt = tmp_path / "corrupt.gz"
    corrupt.write_bytes(whole[:100] + bytes(200) + whole[300:])
    done = report(str(corrupt))
    assert done.returncode == 1 and "compressed data is corrupt" in done.stderr.decode()


@pytest.mark.unit
def test_a_bad_zone_is_one_line_and_exit_2(log: Path) -> None:
    done = report(str(log), env={"TASK_TIME_TZ": "Mars/Olympus"})
    assert done.returncode == 2 and done.stderr.decode().count("\n") == 1 and "Mars/Olympus" in done.stderr.decode()


@pytest.mark.unit
def test_progress_shows_only_on_a_terminal() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    shown, hidden = Terminal(), io.StringIO()
    for stream in (shown, hidden):
        progress = Progress(stream, delay=0, every=0)
        progress.update("task-time.log", 1234)
        progress.done()
    assert "reading task-time.log: 1,234 lines" in shown.getvalue() and shown.getvalue().endswith("\r\x1b[K")
    assert hidden.getvalue() == ""


@pytest.mark.unit
def test_other_line_readers_are_offered_the_lines_tasks_do_not_take() -> None:
    class MonitorLines:
        def __init__(self) -> None:
            self.lines: list[bytes] = []

        def offer(self, line: bytes) -> bool:
            if line.startswith(b"Queue-monitor: "):
                self.lines.append(line)
                return True
            return False

    monitor = MonitorLines()
    tally = Tally(readers=[monitor])
    tally.feed(b"Queue-monitor: q=default depth=3\nTime: 2026-11-21 10:00:00,000 Task: a Task-time: 1\nnoise\n", "x", 1)
    assert monitor.lines == [b"Queue-monitor: q=default depth=3"]
    assert (tally.lines, tally.parsed, tally.unparsed) == (3, 2, 1)


@pytest.mark.redis
@pytest.mark.jvm
def test_real_workers_lines_read_like_the_pipeline_in_every_status(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "task-time.log"
    queue_name = "queue with spaces\nand ünï"
    queue = Queue(queue_name, connection=redis)
    jobs = [
        queue.enqueue(tasks.sleep_for, 0.2),
        queue.enqueue(tasks.sleep_for, 0.1),
        queue.enqueue(tasks.fail, "boom"),
        queue.enqueue(tasks.sleep_for, 5, job_timeout=1),
        queue.enqueue(tasks.kill_own_horse, 0.1),
        queue.enqueue(f"tests.tasks.{tasks.NASTY_NAMES[1]}"),
        queue.enqueue(tasks.envoyer_déjà_vu),
    ]
    zone = {"TASK_TIME_TZ": "Europe/Paris"}
    done = run_burst_worker(redis_url, log, queues=[queue_name], env=worker_env(log, **zone))
    assert done.returncode == 0, done.stderr
    lines = read_lines(log)
    assert len(lines) == len(jobs)
    pipeline = logstash.Pipeline(environ=zone)
    stamps = []
    for text in lines:
        event = pipeline.run(text)
        mine = read_line(text.encode(), LineClock(pipeline_zone(zone)))
        assert "tags" not in event and mine is not None, text
        for name in ("task_name", "task_time", "queue", "status", "wait_time", "job_id", "worker"):
            assert mine[name] == event[name], name
        assert mine["@timestamp"] == logstash.document(event)["@timestamp"]
        stamps.append(mine["@timestamp"])

    document = report_json(str(log), env=zone)
    assert (document["first"], document["last"]) == (min(stamps), max(stamps))
    rows = {row["task"]: row for row in document["tasks"]}
    assert set(rows) == {job.func_name for job in jobs}  # decoded, the nasty name too
    sleep = rows["tests.tasks.sleep_for"]
    assert (sleep["executions"], sleep["timeout"], sleep["failed"], sleep["killed"]) == (3, 1, 0, 0)
    assert 1.0 <= sleep["max"] < 2.0 and sleep["p50"] >= 0.2
    assert rows["tests.tasks.fail"]["failed"] == 1 and rows["tests.tasks.kill_own_horse"]["killed"] == 1
    assert [row["task"] for row in report_json(str(log), "--queue", queue_name, "--status", "killed", env=zone)[
        "tasks"]] == ["tests.tasks.kill_own_horse"]  # fmt: skip
    assert sum(row["executions"] for row in document["tasks"]) == len(jobs) == document["parsed"]


def pipeline_zone(environ: dict[str, str]):
    from pipeline.lines.clock import timezone_from_env

    return timezone_from_env(environ)


@pytest.mark.unit
def test_benchmark_runs_and_prints_its_ratios() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.report", "--lines", "3000", "--rounds", "1"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ratio report/plain loop: " in done.stdout
    assert "bytes per execution" in done.stdout and "lines/s" in done.stdout


@pytest.mark.unit
def test_every_line_counts_even_the_last_one_without_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "task-time.log"
    lines = write_log(path, EXECUTIONS[:3])
    crlf = lines[0] + "\r"  # Logstash keeps the \r, and its anchored grok refuses the line
    path.write_text("\n".join([lines[0], "", crlf, lines[1], lines[2]]), encoding="utf-8")  # no final newline
    document = report_json(str(path))
    assert (document["lines"], document["parsed"], document["unparsed"]) == (5, 3, 2)
    assert document["last"] == "2026-11-21T10:02:00.000Z"


@pytest.mark.unit
def test_celery_lines_are_read_and_retries_counted(tmp_path: Path) -> None:
    """Lines ending in ``System: celery`` count like any other; ``retry`` has a column and a key of its own."""
    clock = LineClock()
    runs = [
        TaskRun("celery.flaky", 0.3, "default", "retry", 0.2, "a", "celery@h.1", "celery"),
        TaskRun("celery.flaky", 0.1, "default", "finished", 0.05, "a", "celery@h.1", "celery"),
        TaskRun("celery.flaky", 0.2, "default", "timeout", None, "b", "celery@h.2", "celery"),
        TaskRun("jobs.rq", 0.4, "default", "finished", 0.1, "c", "h.3"),
    ]
    log = tmp_path / "task-time.log"
    log.write_text("".join(format_line(START + i, format_fields(run), clock) + "\n" for i, run in enumerate(runs)))
    document = report_json(str(log))
    assert (document["parsed"], document["unparsed"]) == (4, 0)
    rows = {row["task"]: row for row in document["tasks"]}
    assert (rows["celery.flaky"]["executions"], rows["celery.flaky"]["retry"], rows["celery.flaky"]["timeout"]) == (
        3,
        1,
        1,
    )
    assert rows["jobs.rq"]["retry"] == 0
    retried = report_json(str(log), "--status", "retry")["tasks"]
    assert [(row["task"], row["executions"]) for row in retried] == [("celery.flaky", 1)]
    table = report(str(log)).stdout.decode()
    assert " retry " in table.splitlines()[0] + " "
    celery = report_json(str(log), "--system", "celery")["tasks"]
    assert [(row["task"], row["executions"]) for row in celery] == [("celery.flaky", 3)]
    rq = report_json(str(log), "--system", "rq")["tasks"]
    assert [(row["task"], row["executions"]) for row in rq] == [("jobs.rq", 1)]
