"""The Celery app and tasks the tests run in real ``celery worker`` processes.

The broker comes from ``CELERY_TEST_BROKER`` (a test Redis or RabbitMQ node); ``install``
is called here, in the module that creates the app, as docs/celery.md says.
"""

from __future__ import annotations

import os
import signal
import time

from celery import Celery

import pipeline.celery

app = Celery("tests.celery_tasks", broker=os.environ.get("CELERY_TEST_BROKER", "redis://127.0.0.1:6379/0"))
app.conf.update(
    task_ignore_result=True,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    # A lost child is reported after this many seconds (Celery's default is 10).
    worker_lost_wait=1.0,
    task_default_queue=os.environ.get("CELERY_TEST_QUEUE", "celery"),
    broker_transport_options={"visibility_timeout": 3600},
)
if os.environ.get("CELERY_TEST_PLAIN") != "1":  # the benchmark's plain worker runs without it
    pipeline.celery.install(app)


@app.task(name="tests.add")
def add(x: float, y: float) -> float:
    return x + y


@app.task(name="tests.no_op")
def no_op() -> None:
    return None


@app.task(name="tests.sleep_for")
def sleep_for(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@app.task(name="tests.fail")
def fail(message: str) -> None:
    raise ValueError(message)


@app.task(name="tests.retry_once", bind=True)
def retry_once(self, countdown: float = 0) -> int:  # type: ignore[no-untyped-def]
    """Ends its first execution in ``self.retry()``; the second finishes."""
    if self.request.retries < 1:
        raise self.retry(countdown=countdown, max_retries=3)
    return self.request.retries


@app.task(name="tests.auto_retry", bind=True, autoretry_for=(KeyError,), max_retries=1, default_retry_delay=0)
def auto_retry(self) -> int:  # type: ignore[no-untyped-def]
    """Raises ``KeyError`` on its first execution (retried by ``autoretry_for``), then finishes."""
    if self.request.retries < 1:
        raise KeyError("first time")
    return self.request.retries


@app.task(name="tests.kill_own_child")
def kill_own_child() -> None:
    """SIGKILL the pool child running this task, as the OOM killer would."""
    os.kill(os.getpid(), signal.SIGKILL)


@app.task(name="tests.sleep_marked")
def sleep_marked(path: str, seconds: float) -> None:
    """Create ``path`` once running (so a test knows it started), then sleep."""
    with open(path, "w"):
        pass
    time.sleep(seconds)
