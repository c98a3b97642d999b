"""The line format module and the task logger, in process (the worker tests cover them under RQ)."""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote
from zoneinfo import ZoneInfo

import pytest

from pipeline.lines.clock import LineClock, format_line, timezone_from_env
from pipeline.lines.fields import encode_name
from pipeline.lines.task import TaskRun, format_fields, format_seconds
from tests.support.lines import parse

REPO = Path(__file__).resolve().parents[1]


def random_names(count: int) -> list[str]:
    rng = random.Random(11)
    alphabet = "ab.c_-%: \t\n\r\x0b\x0c\x1c\x85\xa0\u2028\u2029\u3000\u200bé日本😀"
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 12))) for _ in range(count)]


@pytest.mark.unit
@pytest.mark.parametrize("name", random_names(400))
def test_any_name_becomes_one_token_that_decodes_back(name: str) -> None:
    token = encode_name(name)
    assert token and not any(char.isspace() for char in token) and token.isprintable()
    assert unquote(token) == name
    line = format_line(0, format_fields(TaskRun(name, 1.0, name, "finished", 0.5, "id", name)))
    assert "\n" not in line and "\r" not in line
    assert parse(line)["task"] == name and parse(line)["worker"] == name


@pytest.mark.unit
def test_empty_and_dash_names_stay_distinguishable() -> None:
    assert encode_name("") == encode_name(None) == "-"
    assert encode_name("-") == "%2D"
    assert encode_name("jobs.send_mail") == "jobs.send_mail"


@pytest.mark.unit
@pytest.mark.parametrize("seconds", [0.0, 1e-7, 1.9e-06, 0.052571, 3.0, 1e20, -0.002])
def test_seconds_are_plain_decimals_with_microseconds(seconds: float) -> None:
    text = format_seconds(seconds)
    fields = format_fields(TaskRun("t", seconds, wait_time=seconds))
    assert fields == f"Task: t Task-time: {text} Wait-time: {text}"  # the line writes them the same way
    assert "e" not in text.lower()
    assert len(text.split(".")[1]) == 6
    assert float(text) == pytest.approx(seconds, abs=5e-7)


@pytest.mark.unit
def test_line_clock_writes_milliseconds_in_its_zone_across_a_dst_change() -> None:
    clock = LineClock()
    moment = datetime(2026, 11, 21, 23, 48, 57, 244_900, tzinfo=UTC).timestamp()
    assert clock.format(moment) == "2026-11-21 23:48:57,244"
    assert clock.format(moment + 0.5) == "2026-11-21 23:48:57,744"  # same second, cached prefix
    paris = LineClock(ZoneInfo("Europe/Paris"))
    before = datetime(2026, 10, 25, 0, 59, 59, tzinfo=UTC).timestamp()  # 02:59:59 CEST
    assert paris.format(before) == "2026-10-25 02:59:59,000"
    assert paris.format(before + 1) == "2026-10-25 02:00:00,000"  # clocks went back: CET


@pytest.mark.unit
def test_time_zone_setting() -> None:
    assert timezone_from_env({}) is UTC
    assert timezone_from_env({"TASK_TIME_TZ": "UTC"}) is UTC
    assert timezone_from_env({"TASK_TIME_TZ": ""}) is UTC
    assert timezone_from_env({"TASK_TIME_TZ": "Asia/Kolkata"}) == ZoneInfo("Asia/Kolkata")
    for unknown in ("Mars/Base", "utc", "Z", "europe/paris"):  # Logstash's date filter would refuse these too
        with pytest.raises(ValueError, match="not a known IANA time zone"):
            timezone_from_env({"TASK_TIME_TZ": unknown})


@pytest.mark.redis
def test_an_application_s_own_handlers_receive_structured_records(redis_url: str, tmp_path: Path) -> None:
    """An app that configures the ``pipeline.task_time`` logger keeps its handlers; no file is written."""
    script = textwrap.dedent(
        f"""
        import json, logging, os
        from redis import Redis
        from rq import Queue
        from rq.worker import SimpleWorker
        from pipeline.job import TimedJob

        records = []
        class Collect(logging.Handler):
            def emit(self, record):
                records.append({{k: getattr(record, k) for k in
                    ("task_name", "task_time", "queue", "status", "wait_time", "job_id", "worker")}}
                    | {{"message": record.getMessage()}})
        logger = logging.getLogger("pipeline.task_time")
        logger.addHandler(Collect())
        logger.setLevel(logging.INFO)

        redis = Redis.from_url({redis_url!r})
        queue = Queue("default", connection=redis, job_class=TimedJob)
        job = queue.enqueue("tests.tasks.add", 1, 2)
        SimpleWorker([queue], connection=redis, job_class=TimedJob, name="app").work(burst=True)
        print(json.dumps({{"records": records, "job": job.id}}))
        """
    )
    log = tmp_path / "must-not-exist.log"
    done = subprocess.run(
        [sys.executable, "-c", script],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "TASK_TIME_LOG": str(log)},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    [record] = result["records"]
    assert record["task_name"] == "tests.tasks.add" and record["status"] == "finished"
    assert record["job_id"] == result["job"] and record["worker"] == "app" and record["queue"] == "default"
    assert record["message"].startswith("Task: tests.tasks.add Task-time: ")
    assert not log.exists()


@pytest.mark.redis
def test_benchmark_runs_and_prints_its_measurements() -> None:
    """Smoke only: the targets are judged by running the benchmark, never in a timed test."""
    jobs, pairs, calls = 3, 2, 50
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.job_overhead",
            *("--jobs", str(jobs), "--pairs", str(pairs), "--calls", str(calls)),
            "--report-only",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stderr
    assert "median ratio" in done.stdout and "TimedJob" in done.stdout and "SeedStyleJob" in done.stdout
    written = int(re.search(r"task-time lines written, each with its own unbuffered write: (\d+)", done.stdout)[1])
    assert written >= calls + 2 * pairs * jobs  # every timed perform() and every timed job on both worker types
    assert re.search(r"^SimpleWorker .* (met|within noise|missed)$", done.stdout, re.M), done.stdout
