"""``rq-task-time-worker`` hands its defaults to RQ's own ``worker`` command (click's ``default_map``).

Real ``rq worker`` processes on a real redis-server: what the user gives (options, then
RQ's environment variables) wins over the defaults, and the default name is ``<host>.<pid>``.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from tests import tasks
from tests.support.lines import parse
from tests.support.workers import read_lines, worker_env

pytestmark = [pytest.mark.redis]


def launch(redis_url: str, env: dict[str, str], *args: str) -> tuple[subprocess.Popen, str, str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "--burst", "--url", redis_url, *args, "default"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = process.communicate(timeout=60)
    return process, out, err


def test_default_name_is_host_and_pid(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    Queue("default", connection=redis).enqueue(tasks.no_op)
    process, _, err = launch(redis_url, worker_env(log))
    assert process.returncode == 0, err
    [line] = read_lines(log)
    assert parse(line)["worker"] == f"{socket.gethostname()}.{process.pid}"


def test_an_rq_environment_variable_wins_over_the_default(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    Queue("default", connection=redis).enqueue(tasks.no_op)
    # RQ's plain Job under TimedWorker: the worker refuses it, so the variable reached RQ.
    process, _, err = launch(redis_url, worker_env(log, RQ_JOB_CLASS="rq.job.Job"), "-n", "env-job")
    assert process.returncode == 1
    assert "TimedWorker needs a TimedJob job class" in err


def test_an_option_on_the_command_line_wins_over_the_variable(redis_url: str, tmp_path: Path) -> None:
    env = worker_env(tmp_path / "x.log", RQ_JOB_CLASS="pipeline.job.TimedJob")
    process, _, err = launch(redis_url, env, "--job-class", "tests.tasks.no_op")
    assert process.returncode == 2
    assert err.strip() == "rq-task-time-worker: 'tests.tasks.no_op' is not an RQ job class"
