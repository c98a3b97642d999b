"""Demo tasks, shaped like the ones in the article this project grew from.

Their dotted names (``jobs.send_mail``, …) are what the task-time lines and Kibana show.
``DEMO_MAX_SECONDS`` (default 4) scales the random sleeps.
"""

from __future__ import annotations

import os
import random
import time


def _max_seconds() -> float:
    return float(os.environ.get("DEMO_MAX_SECONDS", "4"))


def send_mail(username: str) -> str:
    """Slow now and then: up to half the maximum."""
    time.sleep(random.uniform(0, _max_seconds() / 2))
    return "sent"


def compute() -> str:
    """The slowest demo task: up to the maximum."""
    time.sleep(random.uniform(0, _max_seconds()))
    return "done"


def simple_task() -> str:
    """Returns at once."""
    return "done"


class UploadError(RuntimeError):
    """The demo's flaky remote service said no."""


def flaky_upload(name: str) -> str:
    """Fails about one time in five, after a short while."""
    time.sleep(random.uniform(0, _max_seconds() / 8))
    if random.random() < 0.2:
        raise UploadError(f"upload of {name} refused")
    return "uploaded"
