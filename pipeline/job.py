"""``TimedJob``: an RQ job that writes one task-time line per execution, whatever its outcome.

Use it with ``rq worker --job-class pipeline.job.TimedJob`` (or ``RQ_JOB_CLASS``). Pair it
with ``-w pipeline.worker.TimedWorker`` so that a work horse killed by SIGKILL or the OOM
killer still gets its line, written by the worker that lost it.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from rq.job import Job
from rq.timeouts import JobTimeoutException

from . import horse
from .lines.task import FAILED, FINISHED, TIMEOUT, TaskRun
from .tasklog import write_task_line


def write_execution_line(job: Job, task_time: float, status: str, worker: str | None = None) -> None:
    """Write the line for one execution of ``job`` that took ``task_time`` seconds and ended with ``status``.

    Wait-time runs from ``enqueued_at`` to ``started_at`` (both set by RQ, in UTC; now if
    the job has no start yet); it is left out for a job that was never enqueued. ``worker``
    defaults to the worker that prepared the job (unknown in the parent of a work horse).
    """
    enqueued_at = job.enqueued_at
    started_at = job.started_at or datetime.now(UTC)
    wait_time = (started_at - enqueued_at).total_seconds() if enqueued_at is not None else None
    write_task_line(TaskRun(job.func_name, task_time, job.origin, status, wait_time, job.id, worker or job.worker_name))


class TimedJob(Job):
    """An ``rq.job.Job`` that times ``perform()`` with a monotonic clock and logs the result.

    The line is written in a ``finally`` block, so a task that raises or hits its job
    timeout is logged too (Status ``failed`` or ``timeout``); the result or exception
    then continues exactly as RQ would handle it with the plain ``Job``. The only trace
    it leaves is one more frame (this ``perform``) in a failed job's traceback.
    """

    def perform(self) -> Any:
        """Run the task like ``Job.perform`` and write its task-time line."""
        horse.mark(horse.PERFORMING)
        started = time.perf_counter()
        status = FINISHED
        try:
            return super().perform()
        except JobTimeoutException:
            status = TIMEOUT
            raise
        except BaseException:
            status = FAILED
            raise
        finally:
            # Not shielded from RQ's job-timeout alarm: blocking SIGALRM costs two system
            # calls per job, for a race only a task ending within microseconds of its
            # timeout can lose.
            write_execution_line(self, time.perf_counter() - started, status)
            horse.mark(horse.LOGGED)
