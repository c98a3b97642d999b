"""Celery: one task-time line per task execution, with one call in the module that creates the app.

::

    app = Celery("proj", broker=...)
    pipeline.celery.install(app)

The producer stamps every message it publishes (``pipeline.celery.stamp``); the worker
writes the line of every execution (``pipeline.celery.execution``), in the same format and
to the same log as RQ's (``TASK_TIME_LOG``, ``TASK_TIME_TZ``), ending in ``System: celery``.
Celery is an optional extra (``pip install "rq-task-time[celery]"``); the RQ parts of the
package never import it.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from . import execution, stamp

_UID = "pipeline.celery"
# (signal, receiver) pairs connected by install.
_RECEIVERS = (
    (signals.before_task_publish, stamp.stamp_message),
    (signals.task_prerun, execution.on_prerun),
    (signals.task_postrun, execution.on_postrun),
    (signals.task_received, execution.on_received),
    (signals.task_failure, execution.on_failure),
    (signals.task_revoked, execution.on_revoked),
    (signals.worker_init, execution.on_worker_init),
)


def install(app: Any) -> None:
    """Instrument the producer and the worker of ``app``; calling it again changes nothing.

    Celery's signals are process-wide, so this instruments every Celery app of the process.
    """
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=f"{_UID}.{receiver.__name__}")


__all__ = ["install"]
