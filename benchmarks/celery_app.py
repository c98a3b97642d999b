"""The Celery app of ``benchmarks.celery_overhead``: a no-op task and a timestamp marker.

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


@app.task(name="bench.no_op")
def no_op() -> None:
    return None


@app.task(name="bench.mark")
def mark(path: str) -> None:
    """Append the time now to ``path``: the first and last task of a batch time the batch."""
    with open(path, "a") as out:
        out.write(f"{time.monotonic()!r}\n")
