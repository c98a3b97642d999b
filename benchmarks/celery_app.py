"""The Celery app of ``benchmarks.celery_overhead``: a no-op task, a busy one, a gate and a timestamp marker.

``pipeline.celery.install`` is called unless ``CELERY_BENCH_PLAIN=1``: the plain worker
of the comparison runs the very same module without it.
"""

from __future__ import annotations

import os
import time

from celery import Celery

import pipeline.celery

app = Celery("benchmarks.celery_app", broker=os.environ.get("CELERY_BENCH_BROKER", "amqp://guest:guest@127.0.0.1//"))
app.conf.update(task_ignore_result=True, worker_hijack_root_logger=False, broker_connection_retry_on_startup=True)
if os.environ.get("CELERY_BENCH_PLAIN") != "1":
    pipeline.celery.install(app)


def _stamp(path: str) -> None:
    with open(path, "a") as out:
        out.write(f"{time.monotonic()!r}\n")


@app.task(name="bench.no_op")
def no_op() -> None:
    return None


@app.task(name="bench.work")
def work(seconds: float) -> None:
    """Spend ``seconds`` of this thread's CPU time: a task with work to do (``--work-ms``)."""
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


@app.task(name="bench.mark")
def mark(path: str) -> None:
    """Append the time now to ``path``: a batch's progress every so many tasks, and its end."""
    _stamp(path)


@app.task(name="bench.gate")
def gate(go: str, path: str) -> None:
    """Hold the worker until the file ``go`` exists, then start the batch's time in ``path``.

    The first task of a batch: the tasks behind it are published while the worker waits
    here, so the publishing is not timed and the worker drains a full queue.
    """
    deadline = time.monotonic() + 120  # never held for good: a worker left behind stops on SIGTERM
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.001)
    _stamp(path)
