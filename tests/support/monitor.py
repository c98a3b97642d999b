"""Run the queue monitor and read its lines back through Logstash's config.

The monitor's ACL user and the counting client are in ``harness.monitor`` (the benchmark uses them too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from redis import Redis
from rq.worker import Worker

from tests.support import logstash
from tests.support.workers import REPO

CONFIG = REPO / "logstash" / "pipeline" / "queue-monitor.conf"


def monitor_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TASK_TIME_", "RQ_"))}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    env.update(extra)
    return env


def monitor_command(url: str, log: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.monitor", "--url", url, "--log", str(log), *args]


def run_monitor(url: str, log: Path, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline.monitor`` run to its end."""
    return subprocess.run(
        monitor_command(url, log, *args), env=monitor_env(**env), capture_output=True, text=True, timeout=timeout
    )


def start_monitor(url: str, log: Path, *args: str, **env: str) -> subprocess.Popen[str]:
    """The monitor's loop in the background; the caller stops it."""
    return subprocess.Popen(
        monitor_command(url, log, *args),
        env=monitor_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


_pipeline: logstash.Pipeline | None = None


def parse(text: str) -> dict[str, Any]:
    """The event Logstash's queue-monitor pipeline makes of one line (fails the test if it does not parse)."""
    global _pipeline
    if _pipeline is None:
        _pipeline = logstash.Pipeline(path=CONFIG, environ={})
    event = _pipeline.run(text, path="/var/log/rq-task-time/queue-monitor.log")
    assert "tags" not in event, (text, event.get("tags"))
    return event


def read_events(log: Path) -> list[dict[str, Any]]:
    """Every line of the monitor log, parsed."""
    if not log.exists():
        return []
    return [parse(text) for text in log.read_text(encoding="utf-8").splitlines()]


def fault_changes(events: list[dict[str, Any]]) -> list[str | None]:
    """The fault at each change of state the events show, from a working start: its ``Error:`` word, or
    None when sampling works again. The monitor says one stderr line per change, not per attempt."""
    changes: list[str | None] = []
    state = None
    for event in events:
        fault = event.get("error")
        if fault != state:
            changes.append(fault)
            state = fault
    return changes


def assert_one_stderr_line_per_change(stderr: str, events: list[dict[str, Any]]) -> None:
    """The monitor's stderr says each change of state of ``events`` once, in order; it ends working again."""
    lines = stderr.strip().splitlines()
    changes = fault_changes(events)
    assert "unreachable" in changes and changes[-1] is None, changes
    assert len(lines) == len(changes), (stderr, changes)
    for line, fault in zip(lines, changes, strict=True):
        assert f"({fault})" in line if fault else line.endswith("can be sampled again"), (line, fault)


class QuickExpiryWorker(Worker):
    """RQ's worker with the started-registry margin cut from 60 s to 3 s.

    RQ gives an execution's started-registry entry an expiry of now + min(job timeout,
    monitoring interval) + 60 s; a worker killed mid-job shows as abandoned only after
    that. The tests shorten the wait, not the mechanism.
    """

    def get_heartbeat_ttl(self, job: Any) -> int:
        return min(super().get_heartbeat_ttl(job), 3)


def start_redis(port: int, folder: Path, *args: str) -> subprocess.Popen[bytes]:
    """``redis-server`` on ``port`` (which the caller chose) with extra ``args``; waits until it answers."""
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 20
    while True:
        try:
            if Redis(port=port).ping():
                return process
        except Exception:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"redis-server did not start on port {port}") from None
            time.sleep(0.05)


def stop(process: subprocess.Popen[Any], timeout: float = 10) -> tuple[Any, Any]:
    """SIGTERM, then SIGKILL after ``timeout``; the process's output."""
    if process.poll() is None:
        process.terminate()
    try:
        return process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.communicate()


# A quiet queue line's values (pipeline.lines.queue field names); tests override what they need.
QUEUE_VALUES: dict[str, object] = {
    "depth": 0,
    "latency": None,
    "missing": 0,
    "started": 0,
    "abandoned": 0,
    "failed": 0,
    "new_failed": 0,
    "deferred": 0,
    "scheduled": 0,
    "overdue": 0,
    "workers": 1,
    "busy": 0,
    "idle": 1,
}
