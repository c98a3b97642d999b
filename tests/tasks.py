"""Tasks the tests enqueue; workers import them as ``tests.tasks.<name>``."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path


def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def add(a: int, b: int) -> int:
    return a + b


def no_op() -> None:
    return None


class TaskError(RuntimeError):
    pass


def fail(message: str) -> None:
    raise TaskError(message)


def kill_own_horse(after: float) -> None:
    """Die the way the OOM killer kills: SIGKILL, no cleanup, no finally."""
    time.sleep(after)
    os.kill(os.getpid(), signal.SIGKILL)


def sleep_and_report_pid(pid_file: str, seconds: float) -> None:
    Path(pid_file).write_text(str(os.getpid()))
    time.sleep(seconds)


def envoyer_déjà_vu() -> str:
    return "unicode"


# Names no `def` can have: RQ resolves "tests.tasks.<attribute>" with getattr, so these run.
NASTY_NAMES = ("send mail", "forge\nTime: 2020-01-01 00:00:00,000 Task: x Task-time: 9", "tab\there%20", "-")
for _name in NASTY_NAMES:
    globals()[_name] = no_op
