"""Run real ``rq worker`` processes against the test Redis and read the lines they write."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TIMED_WORKER = "pipeline.worker.TimedWorker"
TIMED_JOB = "pipeline.job.TimedJob"


def worker_env(log_path: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["TASK_TIME_LOG"] = str(log_path)
    env.pop("TASK_TIME_TZ", None)
    env.pop("RQ_JOB_CLASS", None)
    env.pop("RQ_WORKER_CLASS", None)
    env.update(extra)
    return env


def rq_command(redis_url: str, *args: str, command: str = "worker") -> list[str]:
    return [sys.executable, "-m", "rq.cli", command, "--url", redis_url, *args]


def run_burst_worker(
    redis_url: str,
    log_path: Path,
    queues: Sequence[str] = ("default",),
    worker_class: str | None = TIMED_WORKER,
    job_class: str | None = TIMED_JOB,
    name: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run ``rq worker --burst`` until the queues are empty; return the finished process."""
    args = ["--burst"]
    if worker_class:
        args += ["-w", worker_class]
    if job_class:
        args += ["--job-class", job_class]
    if name:
        args += ["--name", name]
    return subprocess.run(
        rq_command(redis_url, *args, *queues),
        env=env or worker_env(log_path),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def start_worker(
    redis_url: str, log_path: Path, *args: str, env: dict[str, str] | None = None, command: str = "worker"
) -> subprocess.Popen[str]:
    """Start a long-running worker (or ``worker-pool``); the caller stops it."""
    return subprocess.Popen(
        rq_command(redis_url, *args, command=command),
        env=env or worker_env(log_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=REPO,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen[str], timeout: float = 30) -> str:
    """Warm-stop a worker (SIGTERM, as its supervisor would), return its output."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


def read_lines(log_path: Path) -> list[str]:
    if not log_path.exists():
        return []
    data = log_path.read_bytes().decode("utf-8")
    assert data == "" or data.endswith("\n"), f"log does not end with a newline: {data[-200:]!r}"
    return data.splitlines()


def wait_for_lines(log_path: Path, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        lines = read_lines(log_path)
        if len(lines) >= count or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)
