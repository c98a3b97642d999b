"""Celery when things go wrong or pile up: a log that cannot be written, recycled children under load,
a broker down at worker start, and the compose demo's producer and worker, all as real processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.redis_server import RedisServer, free_port
from tests import celery_tasks as tasks
from tests.support.celery_workers import (
    by_job,
    start_celery_worker,
    stop_celery_worker,
    use_broker,
    wait_for_file,
    wait_for_lines,
)
from tests.support.lines import parse
from tests.support.workers import REPO

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]


def test_a_log_that_cannot_be_written_is_one_line_and_the_tasks_still_run(broker: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log = blocker / "task-time.log"  # its folder is a file: it cannot be created
    marker = tmp_path / "ran"
    output = tmp_path / "worker.out"
    for _ in range(3):
        tasks.sleep_marked.delay(str(marker), 0)
    worker = start_celery_worker(broker, log, concurrency=2, output=output)
    try:
        wait_for_file(marker)
        time.sleep(2)
    finally:
        stop_celery_worker(worker)
    said = [line for line in output.read_text(errors="replace").splitlines() if "task-time" in line]
    assert len(said) == 1, said
    assert "Traceback" not in output.read_text(errors="replace")
    assert not log.exists()


def test_recycled_children_under_load_lose_and_duplicate_no_line(broker: str, tmp_path: Path) -> None:
    """1,000 tasks on four children replaced every 25 tasks: exactly one line per task."""
    log = tmp_path / "task-time.log"
    with tasks.app.producer_or_acquire() as producer:
        ids = [tasks.no_op.apply_async(producer=producer).id for _ in range(1000)]
    worker = start_celery_worker(broker, log, "--max-tasks-per-child", "25", concurrency=4)
    try:
        lines = wait_for_lines(log, 1000, timeout=300, settle=2)
    finally:
        stop_celery_worker(worker)
    jobs = by_job(lines)
    assert len(lines) == 1000 and sorted(jobs) == sorted(ids)
    assert {line["status"] for found in jobs.values() for line in found} == {"finished"}
    assert len({str(found[0]["worker"]) for found in jobs.values()}) > 4  # children were replaced


def test_a_broker_down_at_worker_start_is_waited_for_and_the_tasks_then_run(tmp_path: Path) -> None:
    """The worker starts before its Redis; once Redis is up, a task published then runs and has its line."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "task-time.log"
    worker = start_celery_worker(url, log, pool="solo", concurrency=1)
    server = None
    try:
        time.sleep(3)
        assert worker.poll() is None
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        use_broker(tasks.app, url)
        deadline = time.monotonic() + 30
        while True:
            try:
                job = tasks.add.delay(1, 1).id
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        lines = wait_for_lines(log, 1, timeout=60)
    finally:
        stop_celery_worker(worker)
        if server is not None:
            server.terminate()
            server.wait(10)
    output = log.with_suffix(".worker.out").read_text(errors="replace")
    assert [parse(line)["job"] for line in lines] == [job], output[-2000:]
    assert "Cannot connect to redis" in output and "Traceback" not in output


def test_the_compose_celery_demo_runs_its_producer_and_worker(redis_server: RedisServer, tmp_path: Path) -> None:
    """worker/celery_jobs.py as the compose profile runs it: the producer publishes, the worker writes lines."""
    redis_server.connection().flushall()
    log = tmp_path / "task-time.log"
    demo = REPO / "worker"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CELERY_BROKER_URL": redis_server.url, "TASK_TIME_LOG": str(log)}
    env["DEMO_MAX_SECONDS"] = "0.2"
    done = subprocess.run(
        [sys.executable, "celery_jobs.py", "--count", "12", "--rate", "200"],
        env=env,
        cwd=demo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = (tmp_path / "demo.out").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_jobs", "worker", "--concurrency", "2", "--without-mingle"],
        env=env,
        cwd=demo,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = wait_for_lines(log, 12, timeout=90, settle=2)
    finally:
        stop_celery_worker(worker)
    assert len(lines) >= 12, (tmp_path / "demo.out").read_text(errors="replace")[-2000:]
    parsed = [parse(line) for line in lines]
    assert all(str(fields["task"]).startswith("celery_jobs.") for fields in parsed)
    assert {fields["queue"] for fields in parsed} == {"default"} and {fields["system"] for fields in parsed} == {
        "celery"
    }
    assert all("wait_time" in fields for fields in parsed)
