"""Run real ``celery worker`` processes of ``tests.celery_tasks`` against a test broker."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from celery import signals

from pipeline.celery import stamp
from tests.support.lines import parse
from tests.support.workers import REPO, read_lines


def celery_env(broker_url: str, log_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a test worker: its broker, its log, UTC lines."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["CELERY_TEST_BROKER"] = broker_url
    env["TASK_TIME_LOG"] = str(log_path)
    env.pop("TASK_TIME_TZ", None)
    env.update(extra)
    return env


def start_celery_worker(
    broker_url: str,
    log_path: Path,
    *args: str,
    pool: str = "prefork",
    concurrency: int = 2,
    output: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start ``celery -A tests.celery_tasks worker`` in its own session; ``stop_celery_worker`` ends it."""
    out = (output or log_path.with_suffix(".worker.out")).open("wb")
    command = [sys.executable, "-m", "celery", "-A", "tests.celery_tasks", "worker", "--pool", pool]
    command += ["--concurrency", str(concurrency), "--loglevel", "INFO", "--without-heartbeat"]
    command += ["--without-gossip", "--without-mingle", *args]
    return subprocess.Popen(
        command,
        env=env or celery_env(broker_url, log_path),
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=REPO,
        start_new_session=True,
    )


def stop_celery_worker(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Warm shutdown (SIGTERM to the main process), then SIGKILL to its whole session if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
    with contextlib.suppress(ProcessLookupError):  # children left by a killed main process
        os.killpg(process.pid, signal.SIGKILL)


def wait_for_lines(log_path: Path, count: int, timeout: float = 90, settle: float = 0.0) -> list[str]:
    """The log's lines once it holds ``count`` (or at the deadline); then ``settle`` seconds more for extras."""
    deadline = time.monotonic() + timeout
    while len(read_lines(log_path)) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    if settle:
        time.sleep(settle)
    return read_lines(log_path)


def wait_for_file(path: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@contextlib.contextmanager
def unstamped() -> Iterator[None]:
    """Publish from this process as a producer without ``install`` would: no stamp."""
    uid = f"pipeline.celery.{stamp.stamp_message.__name__}"
    signals.before_task_publish.disconnect(dispatch_uid=uid)
    try:
        yield
    finally:
        signals.before_task_publish.connect(stamp.stamp_message, weak=False, dispatch_uid=uid)


def use_broker(app: Any, url: str) -> None:
    """Point this process's producer at ``url`` (kombu keeps its pools per URL, the app only its own)."""
    app.conf.broker_url = url
    app._pool = None
    app.amqp._producer_pool = None


def by_job(lines: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for line in lines:
        fields = parse(line)
        found.setdefault(str(fields["job"]), []).append(fields)
    return found
