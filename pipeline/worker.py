"""``TimedWorker``: RQ's forking worker that writes the line a killed work horse could not.

A horse killed by SIGKILL, the OOM killer, ``rq``'s stop-job command or a cold shutdown
never reaches the ``finally`` block of ``TimedJob.perform``. The worker process that
forked it knows when it started and sees it die, so it writes ``Status: killed`` for it,
with the time elapsed since the fork. A page of memory shared with the horse tells the
worker whether the horse got its own line out first, so no execution is logged twice.

Start it with ``rq worker -w pipeline.worker.TimedWorker --job-class pipeline.job.TimedJob``.
"""

from __future__ import annotations

import mmap
import os
import time
from typing import Any

from rq.job import Job
from rq.worker import Worker

from . import horse
from .appender import AppendError
from .job import TimedJob, write_execution_line
from .lines.clock import timezone_from_env
from .lines.task import KILLED
from .tasklog import TaskLogHandler, open_task_log


class ConfigurationError(SystemExit):
    """The worker cannot write task lines as configured.

    A ``SystemExit`` on purpose: ``rq worker`` turns any ``Exception`` raised while it sets
    up a worker into a logged traceback, where a one-line reason and a non-zero exit
    status are what an operator needs.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"rq-task-time: {message}")


class TimedWorker(Worker):
    """A forking ``Worker`` for ``TimedJob`` that also logs work horses that were killed.

    When it starts working it checks that the job class is a ``TimedJob`` and that the
    task-time log can be opened, and opens it once so every horse inherits the open file.
    Building the object alone has no side effects: RQ also builds workers just to list
    them (``rq info``).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._line_marker: mmap.mmap | None = None
        self._log_handlers: list[TaskLogHandler] = []
        self._horse_job: Job | None = None
        self._horse_started = 0.0

    def bootstrap(self, *args: Any, **kwargs: Any) -> None:
        """Check the configuration, open the task log, then start up as ``Worker`` does."""
        job_class = self.job_class
        if not (isinstance(job_class, type) and issubclass(job_class, TimedJob)):
            name = f"{job_class.__module__}.{job_class.__qualname__}" if isinstance(job_class, type) else job_class
            hint = " (pass --job-class pipeline.job.TimedJob)" if job_class is Job else ""
            raise ConfigurationError(f"TimedWorker needs a TimedJob job class, got {name}{hint}")
        try:
            timezone_from_env()
            logger = open_task_log()
        except (AppendError, ValueError) as exc:
            raise ConfigurationError(str(exc)) from None
        self._log_handlers = [h for h in logger.handlers if isinstance(h, TaskLogHandler)]
        self._line_marker = horse.share_marker()  # before the first fork, so every horse shares it
        super().bootstrap(*args, **kwargs)

    def fork_work_horse(self, job: Job, queue: Any) -> None:
        """Fork the horse as ``Worker`` does, remembering the job and when it started."""
        for handler in self._log_handlers:
            handler.reopen_if_moved()  # after log rotation the horse inherits the new file
        assert self._line_marker is not None, "bootstrap() shares the marker page before the first fork"
        self._line_marker[0] = horse.IDLE
        self._horse_job = job
        self._horse_started = time.perf_counter()
        super().fork_work_horse(job, queue)

    def wait_for_horse(self) -> tuple[int | None, int | None, Any]:
        """Wait for the horse as ``Worker`` does; if it died inside its task, write its line."""
        pid, status, rusage = super().wait_for_horse()
        if pid:
            job, self._horse_job = self._horse_job, None
            # PERFORMING: the task started and no line was written. IDLE: it never started
            # (RQ failed before perform), so there is no execution to log.
            marker = self._line_marker
            if job is not None and status != os.EX_OK and marker is not None and marker[0] == horse.PERFORMING:
                with horse.alarm_deferred():  # RQ's horse monitor runs under SIGALRM too
                    write_execution_line(job, time.perf_counter() - self._horse_started, KILLED, self.name)
        return pid, status, rusage
