"""The metrics endpoint of a real monitor process on a real redis-server, as the read-only ACL user."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from pipeline.lines.queue import STATUSES, match_line
from tests import tasks
from tests.support.metrics import MetricsMonitor, RedisServer, free_port, get, run_to_end, scrape, value
from tests.support.monitor import monitor_command, monitor_env

pytestmark = [pytest.mark.redis]

ONE_SAMPLE = ("--interval", "3600", "--name", "metrics-test", "--queues", "default,high")


def _commands(redis: Redis) -> dict[str, int]:
    return {name: stats["calls"] for name, stats in redis.info("commandstats").items()}


def _lines(log: Path) -> dict[str, dict[str, bytes]]:
    """The last sample's lines by queue (``""`` for the Redis line), their fields as bytes."""
    found: dict[str, dict[str, bytes]] = {}
    for line in log.read_bytes().splitlines():
        kind, match = match_line(line)  # type: ignore[misc]
        fields = match.groupdict()
        found[fields["queue"].decode() if kind == "queue" else ""] = fields
    return found


def test_the_endpoint_serves_the_values_of_the_log_lines_of_the_same_sample(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    redis.config_set("maxmemory", "64mb")
    queue = Queue("default", connection=redis)
    for _ in range(3):
        queue.enqueue(tasks.no_op)
    queue.failed_job_registry.add(queue.enqueue(tasks.fail, "boom"), ttl=600)  # one failed, 3 still waiting
    time.sleep(0.3)  # the head job has waited
    monitor = MetricsMonitor(monitor_url(redis_server.url), tmp_path / "m.log", *ONE_SAMPLE)
    try:
        document = monitor.wait_for_sample()["rq"]
        metrics = scrape(monitor.port)
    finally:
        monitor.stop()
    lines = _lines(tmp_path / "m.log")
    redis_line = lines[""]
    broker = "redis://" + redis_line["redis"].decode()
    assert document["broker"] == broker and broker == f"redis://127.0.0.1:{redis_server.port}/0"
    assert all(dict(labels)["broker"] == broker and dict(labels)["system"] == "rq" for _, labels in metrics)

    def close(metric: str, field: bytes, places: int, **labels: str) -> None:
        assert round(value(metrics, metric, **labels), places) == float(field), (metric, labels, field)

    close("task_time_broker_memory_used_bytes", redis_line["used_memory"], 0)
    close("task_time_broker_maxmemory_bytes", redis_line["maxmemory"], 0)
    assert round(value(metrics, "task_time_broker_memory_used_ratio") * 100, 2) == float(redis_line["memory_used_pct"])
    close("task_time_broker_evicted_keys_total", redis_line["evicted_keys"], 0)
    close("task_time_broker_oom_rejections_total", redis_line["oom_rejections"], 0)
    close("task_time_monitor_sample_duration_seconds", redis_line["sample_time"], 6)
    assert STATUSES[int(value(metrics, "task_time_broker_status"))] == redis_line["status"].decode()
    for name in ("default", "high"):
        line = lines[name]
        close("task_time_queue_latency_seconds", line["latency"], 6, queue=name)
        close("task_time_queue_depth", line["depth"], 0, queue=name)
        close("task_time_queue_workers", line["busy"], 0, queue=name, state="busy")
        close("task_time_queue_workers", line["idle"], 0, queue=name, state="idle")
        close("task_time_queue_abandoned_jobs", line["abandoned"], 0, queue=name)
        close("task_time_queue_failed_jobs", line["failed"], 0, queue=name)
        close("task_time_queue_overdue_jobs", line["overdue"], 0, queue=name)
        assert STATUSES[int(value(metrics, "task_time_queue_status", queue=name))] == line["status"].decode()
        assert document["queues"][name]["depth"] == int(line["depth"])
        assert round(document["queues"][name]["latency"], 6) == float(line["latency"])
        assert document["queues"][name]["status"] == line["status"].decode()
    default = lines["default"]
    assert int(default["depth"]) == 4 and int(default["failed"]) == 1 and float(default["latency"]) >= 0.3
    assert lines["default"]["status"] == b"critical"  # jobs waiting, no worker: status 2 on the endpoint too


def test_scraping_every_100_ms_for_60_s_sends_no_command_to_redis(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    Queue("default", connection=redis).enqueue(tasks.no_op)
    monitor = MetricsMonitor(monitor_url(redis_server.url), tmp_path / "m.log", *ONE_SAMPLE)
    try:
        monitor.wait_for_sample()
        before = _commands(redis)
        scrapes, deadline = 0, time.monotonic() + 60
        while time.monotonic() < deadline:
            scrape(monitor.port)
            assert get(f"http://127.0.0.1:{monitor.port}/queues")[0] == 200
            scrapes += 1
            time.sleep(0.1)
        after = _commands(redis)
        assert monitor.process.poll() is None
    finally:
        monitor.stop()
    assert scrapes >= 400
    before["cmdstat_info"] += 1  # the INFO that read ``before``
    assert after == before


def test_a_port_that_cannot_be_bound_stops_the_monitor_at_start(redis_server: RedisServer, tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_to_end(
            monitor_command(redis_server.url, tmp_path / "m.log", "--metrics-port", str(port)), env=monitor_env()
        )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in done.stderr
    assert not (tmp_path / "m.log").exists() or not (tmp_path / "m.log").read_text()  # never sampled


def test_without_the_extra_the_monitor_says_how_to_install_it(redis_server: RedisServer, tmp_path: Path) -> None:
    shadow = tmp_path / "shadow" / "prometheus_client"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named prometheus_client')\n")
    env = monitor_env()
    env["PYTHONPATH"] = f"{shadow.parent}:{env['PYTHONPATH']}"
    command = monitor_command(redis_server.url, tmp_path / "m.log", "--metrics-port", str(free_port()))
    done = run_to_end(command, env=env)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert 'pip install "rq-task-time[metrics]"' in done.stderr
    # Without --metrics-port the package is never imported.
    done = run_to_end([*command[:-2], "--once"], env=env)
    assert done.returncode == 0, done.stderr
    assert sys.executable == command[0]


def test_check_ignores_the_metrics_port(redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    with socket.socket() as taken:  # as in compose: the loop holds the port when the healthcheck runs --check
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        command = monitor_command(redis_server.url, tmp_path / "m.log", "--check", "--check-window", "0")
        done = run_to_end(command, env=monitor_env(TASK_TIME_MONITOR_METRICS_PORT=port))
    assert done.returncode in (0, 1) and "metrics" not in done.stderr, done.stderr


def test_while_redis_cannot_be_sampled_the_endpoint_says_so(tmp_path: Path) -> None:
    monitor = MetricsMonitor(f"redis://127.0.0.1:{free_port()}/0", tmp_path / "m.log", "--interval", "0.2")
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                metrics = scrape(monitor.port)
                if value(metrics, "task_time_monitor_sample_errors_total", error="unreachable") >= 2:
                    break
            except (OSError, AssertionError):
                pass
            assert time.monotonic() < deadline and monitor.process.poll() is None
            time.sleep(0.1)
        assert value(metrics, "task_time_broker_up") == 0
        assert value(metrics, "task_time_monitor_samples_total") == 0
        assert not any(name.startswith("task_time_queue_") for name, _ in metrics)
        status, body = get(f"http://127.0.0.1:{monitor.port}/queues")
        assert status == 503 and b"no sample yet" in body
    finally:
        monitor.stop()
