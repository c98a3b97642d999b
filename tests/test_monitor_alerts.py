"""Statuses, reasons and ``--check`` exit codes, on a real redis-server, as the ACL user."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from pipeline.monitor.judge import parse_latency_limits
from pipeline.monitor.options import parse_args
from tests import tasks
from tests.support.monitor import read_events, run_monitor


@pytest.fixture
def url(monitor_user_url: str) -> str:
    return monitor_user_url


def _check(url: str, *args: str, **env: str) -> tuple[int, list[str]]:
    done = run_monitor(url, Path("/nonexistent/never-written.log"), "--check", "--name", "nagios", *args, **env)
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout.splitlines()


def _worker_heartbeat(redis: Redis, queue: str, name: str = "w1") -> None:
    """A live worker's keys, as RQ's register_birth and heartbeat write them."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis.hset(f"rq:worker:{name}", mapping={"state": "idle", "last_heartbeat": stamp, "queues": queue})
    redis.expire(f"rq:worker:{name}", 60)
    redis.sadd(f"rq:workers:{queue}", f"rq:worker:{name}")


@pytest.mark.redis
def test_an_empty_healthy_redis_is_ok(url: str) -> None:
    code, lines = _check(url, "--check-window", "0")
    assert code == 0
    assert len(lines) == 1 and lines[0].startswith("OK nagios: 0 queues, memory ")
    assert lines[0].endswith("% of maxmemory")


@pytest.mark.redis
def test_jobs_and_no_live_worker_is_critical_and_a_live_worker_clears_it(redis: Redis, url: str) -> None:
    Queue("default", connection=redis).enqueue(tasks.no_op)
    code, lines = _check(url, "--check-window", "0")
    assert code == 2
    assert lines == ["CRITICAL nagios: queue default: 1 jobs waiting and no live worker"]
    _worker_heartbeat(redis, "default")
    code, lines = _check(url)  # two samples, a second apart
    assert code == 0 and len(lines) == 1 and lines[0].startswith("OK nagios: 1 queues")


@pytest.mark.redis
def test_policy_and_missing_maxmemory_warn_with_the_reason(redis: Redis, url: str) -> None:
    redis.config_set("maxmemory-policy", "allkeys-lru")
    code, lines = _check(url, "--check-window", "0")
    assert code == 1
    assert lines == ["WARN nagios: redis: maxmemory-policy allkeys-lru: RQ's keys can be evicted silently"]
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", "0")
    assert _check(url, "--check-window", "0") == (
        1,
        ["WARN nagios: redis: no maxmemory: Redis grows until the host kills it"],
    )


@pytest.mark.redis
def test_latency_limits_per_queue(redis: Redis, url: str) -> None:
    old = (datetime.now(UTC) - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    for name in ("high", "default", "low"):
        job = Queue(name, connection=redis).enqueue(tasks.no_op)
        redis.hset(f"rq:job:{job.id}", "enqueued_at", old)
        _worker_heartbeat(redis, name, f"w-{name}")
    code, lines = _check(url, "--check-window", "0", "--max-latency", "high=30,default=300")
    assert code == 1
    assert len(lines) == 1 and lines[0].startswith("WARN nagios: queue high: latency 6")
    assert lines[0].endswith("s > 30s")
    code, lines = _check(url, "--check-window", "0", "--max-latency", "high=30,default=45")
    assert code == 1 and len(lines) == 3
    assert _check(url, "--check-window", "0", TASK_TIME_MONITOR_MAX_LATENCY="high=300")[0] == 0


@pytest.mark.redis
def test_abandoned_and_overdue_scheduled_jobs_warn(redis: Redis, url: str) -> None:
    redis.zadd("rq:wip:default", {"job:exec": time.time() - 1})
    redis.sadd("rq:queues", "rq:queue:default")
    code, lines = _check(url, "--check-window", "0")
    assert (code, lines) == (1, ["WARN nagios: queue default: 1 abandoned jobs (worker died mid-job)"])
    redis.delete("rq:wip:default")
    Queue("default", connection=redis).enqueue_at(datetime.now(UTC) - timedelta(minutes=2), tasks.no_op)
    code, lines = _check(url, "--check-window", "0")
    assert (code, lines) == (1, ["WARN nagios: queue default: 1 scheduled jobs overdue (is a scheduler running?)"])
    assert _check(url, "--check-window", "0", "--scheduled-grace", "600")[0] == 0


@pytest.mark.redis
def test_memory_thresholds_are_flags_and_environment_variables(redis: Redis, url: str) -> None:
    used = redis.info("memory")["used_memory"]
    redis.config_set("maxmemory", str(int(used / 0.85)))
    code, lines = _check(url, "--check-window", "0")
    assert code == 1 and lines[0].startswith("WARN nagios: redis: memory 8") and lines[0].endswith(">= 80%")
    assert _check(url, "--check-window", "0", "--memory-critical", "84", "--memory-warn", "50")[0] == 2
    assert _check(url, "--check-window", "0", TASK_TIME_MONITOR_MEMORY_WARN="88")[0] == 0


@pytest.mark.redis
@pytest.mark.jvm
def test_the_loop_writes_status_and_reason_in_every_line(redis: Redis, url: str, tmp_path: Path) -> None:
    Queue("default", connection=redis).enqueue(tasks.no_op)
    redis.config_set("maxmemory-policy", "volatile-lru")
    done = run_monitor(url, tmp_path / "m.log", "--once", "--name", "two monitors")
    assert done.returncode == 0, done.stderr
    redis_line, queue_line = read_events(tmp_path / "m.log")
    assert redis_line["monitor"] == queue_line["monitor"] == "two%20monitors"
    assert redis_line["status"] == "warn" and "volatile-lru" in redis_line["reason"]
    assert queue_line["status"] == "critical" and queue_line["reason"] == "1 jobs waiting and no live worker"
    assert redis_line["maxmemory_policy"] == "volatile-lru"


@pytest.mark.unit
@pytest.mark.parametrize(
    ("argument", "message"),
    [
        (["--max-latency", "high"], "is not QUEUE=SECONDS"),
        (["--max-latency", "high=soon"], "is not a number of seconds"),
        (["--memory-warn", "95"], "--memory-warn <= --memory-critical"),
        (["--interval", "0"], "must be positive"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(argument: list[str], message: str, tmp_path: Path) -> None:
    done = run_monitor("redis://127.0.0.1:1/0", tmp_path / "m.log", "--once", *argument)
    assert done.returncode == 2
    assert message in done.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "m.log").exists()


@pytest.mark.unit
@pytest.mark.parametrize(
    ("variable", "value"), [("TASK_TIME_MONITOR_INTERVAL", "soon"), ("TASK_TIME_MONITOR_HEAD", "2.5")]
)
def test_a_bad_environment_value_names_its_variable_and_exits_2(
    variable: str, value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as stopped:
        parse_args([], environ={variable: value})
    assert stopped.value.code == 2
    assert f"error: {variable}={value!r} is not a " in capsys.readouterr().err.strip().splitlines()[-1]
    taken = parse_args([], environ={variable: "3"})
    assert (taken.interval, taken.head) == ((3.0, 10) if variable.endswith("INTERVAL") else (15.0, 3))


@pytest.mark.unit
def test_latency_limits_parse() -> None:
    assert parse_latency_limits("high=30, default=300") == {"high": 30.0, "default": 300.0}
    assert parse_args(["--max-latency", "a=b=1"], environ={}).thresholds.latency_limit("a=b") == 1.0
    assert parse_args([], environ={}).thresholds.latency_limit("anything") == 300.0


@pytest.mark.redis
def test_a_log_that_cannot_be_opened_is_refused_at_start_in_one_line(url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # a file where the log's folder should be
    done = run_monitor(url, blocker / "queue-monitor.log", "--once")
    assert done.returncode == 2
    [error] = done.stderr.strip().splitlines()
    assert "cannot open the queue-monitor log" in error and "TASK_TIME_MONITOR_LOG" in error, error
