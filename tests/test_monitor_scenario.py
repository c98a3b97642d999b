"""The seed article's scenario on a real redis-server, watched by the monitor as the read-only ACL user.

Redis gets ``maxmemory`` = used memory + 250 KB, as in the article; jobs are enqueued in
small batches until Redis answers ``OOM command not allowed``, the monitor sampling
between batches. It must have said ``warn`` at 80 % and ``critical`` at 90 % before the
first refused enqueue, and report the refusals after it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import OutOfMemoryError
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.appender import Appender
from pipeline.lines.clock import LineClock
from pipeline.monitor.options import parse_args
from pipeline.monitor.output import Output
from pipeline.monitor.rq_source import RqSource
from pipeline.monitor.sample import take_sample
from tests import tasks
from tests.support.monitor import read_events, run_monitor
from tests.support.workers import start_worker, stop_process

pytestmark = [pytest.mark.redis, pytest.mark.jvm]


@pytest.fixture
def server() -> Iterator[RedisServer]:
    """A Redis of its own: this test fills it up."""
    server = RedisServer()
    yield server
    server.stop()


def test_the_monitor_warns_at_80_and_is_critical_at_90_percent_before_the_first_oom(
    server: RedisServer, tmp_path: Path
) -> None:
    admin = server.connection()
    grant_monitor(admin)
    log = tmp_path / "queue-monitor.log"
    args = parse_args(["--url", monitor_url(server.url), "--log", str(log), "--name", "seed"], environ={})
    appender = Appender(log, describe="queue-monitor log", variable="TASK_TIME_MONITOR_LOG", reporter="test")
    monitor = RqSource(args, Redis.from_url(args.url), Output(args.name, appender, LineClock()))
    assert monitor.step()
    queue = Queue("default", connection=admin)
    # The first enqueue costs Redis ~100 KB once (RQ's scripts, buffers): measure after it.
    queue.enqueue(tasks.no_op).delete()
    used = admin.info("memory")["used_memory"]
    admin.config_set("maxmemory", str(used + 250 * 1024))

    enqueued, lines_before_oom = 0, None
    while lines_before_oom is None:
        assert enqueued < 5000, "Redis never ran out of memory"
        assert monitor.step()
        for _ in range(5):
            try:
                queue.enqueue(tasks.sleep_for, 5)
                enqueued += 1
            except OutOfMemoryError as exc:  # redis-py's name for "OOM command not allowed ..."
                assert "command not allowed when used memory > 'maxmemory'" in str(exc), exc
                lines_before_oom = len(read_events(log))
                break
    assert monitor.step()
    # Redis shrinks idle clients' query buffers now and then (tens of KB, room for dozens of
    # jobs at ~600 bytes each), which can take it under maxmemory again: enqueue until refused.
    for _ in range(1000):
        try:
            queue.enqueue(tasks.sleep_for, 5)
            enqueued += 1
        except OutOfMemoryError:
            break
    else:
        pytest.fail("Redis took 1,000 more jobs after refusing one")
    assert monitor.step()

    events = read_events(log)
    redis_lines = [event for event in events if "used_memory" in event]
    before, after = redis_lines[: len([e for e in events[:lines_before_oom] if "used_memory" in e])], redis_lines[-2:]
    assert before[0]["maxmemory"] == 0 and before[0]["reason"] == "no maxmemory: Redis grows until the host kills it"
    before = before[1:]
    first_warn = next(i for i, e in enumerate(before) if e["status"] == "warn")
    first_critical = next(i for i, e in enumerate(before) if e["status"] == "critical")
    assert first_warn < first_critical, "warn came first"
    assert 80 <= before[first_warn]["memory_used_pct"] < 90
    assert before[first_warn]["reason"] == f"memory {before[first_warn]['memory_used_pct']:.1f}% of maxmemory >= 80%"
    assert before[first_critical]["memory_used_pct"] >= 90
    assert all(e["oom_rejections"] == 0 for e in before)
    for event in after:  # the samples after the first and the second refused enqueue
        assert event["status"] == "critical" and event["oom_rejections"] >= 1
        assert "commands rejected with OOM since last sample" in event["reason"]
    queue_lines = [event for event in events if event.get("queue") == "default"]
    assert queue_lines[-1]["depth"] == enqueued
    assert queue_lines[-1]["status"] == "critical"
    assert queue_lines[-1]["reason"] == f"{enqueued} jobs waiting and no live worker"


def test_a_worker_killed_mid_job_shows_as_abandoned_once_its_entry_expires(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    reader = Redis.from_url(monitor_url(redis_server.url))
    worker = start_worker(redis_server.url, tmp_path / "t.log", "-w", "tests.support.monitor.QuickExpiryWorker", "q")
    try:
        pid_file = tmp_path / "horse.pid"
        Queue("q", connection=redis).enqueue(tasks.sleep_and_report_pid, str(pid_file), 30, job_timeout=60)
        deadline = time.monotonic() + 60
        while redis.zcard("rq:wip:q") == 0 or not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline and worker.poll() is None, "the job never started"
            time.sleep(0.05)
        running = take_sample(reader, ["q"]).queues[0]
        assert (running.started, running.abandoned, running.busy) == (1, 0, 1)
        # The worker and its work horse (RQ gives the horse a process group of its own), mid-job.
        os.kill(int(pid_file.read_text()), signal.SIGKILL)
        os.killpg(worker.pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while take_sample(reader, ["q"]).queues[0].abandoned == 0:
            assert time.monotonic() < deadline, "the entry never expired"
            time.sleep(0.2)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        stop_process(worker)
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "m.log", "--once", "--queues", "q")
    assert done.returncode == 0, done.stderr
    [_, line] = read_events(tmp_path / "m.log")
    assert (line["started"], line["abandoned"], line["status"]) == (1, 1, "warn")
    assert line["reason"] == "1 abandoned jobs (worker died mid-job)"
