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

# Pools that run every task in the worker's own process, by their ``--pool`` names and modules.
_IN_PROCESS_POOLS = frozenset({"solo", "threads", "gevent", "eventlet"})
_IN_PROCESS_MODULES = frozenset(f"celery.concurrency.{name}" for name in ("solo", "thread", "gevent", "eventlet"))


def runs_tasks_in_process(pool: object) -> bool:
    """Whether a worker's pool (its ``--pool`` name or class) runs the tasks in the worker's own process.

    Anything else, prefork and unknown pools included, is taken as running them elsewhere.
    """
    if isinstance(pool, str):
        return pool in _IN_PROCESS_POOLS
    return getattr(pool, "__module__", None) in _IN_PROCESS_MODULES


def _uid(receiver: Any) -> str:
    return f"{_UID}.{receiver.__name__}"


def keep_requests_only_for_pool_children(sender: Any = None, **_: Any) -> None:
    """``worker_init``: under a pool that runs the tasks in the worker itself, stop keeping each Request.

    The main process keeps each Request (``task_received``) only to time a task whose pool
    child died or hit the hard time limit; where the worker's own process runs every task,
    that process writes every line, and one signal dispatch per task is saved.
    """
    if runs_tasks_in_process(getattr(sender, "pool_cls", None)):
        signals.task_received.disconnect(dispatch_uid=_uid(execution.on_received))


# (signal, receiver) pairs connected by install.
_RECEIVERS = (
    (signals.before_task_publish, stamp.stamp_message),
    (signals.task_prerun, execution.on_prerun),
    (signals.task_postrun, execution.on_postrun),
    (signals.task_received, execution.on_received),
    (signals.task_failure, execution.on_failure),
    (signals.task_revoked, execution.on_revoked),
    (signals.worker_init, execution.on_worker_init),
    (signals.worker_init, keep_requests_only_for_pool_children),
)


def install(app: Any) -> None:
    """Instrument the producer and the worker of ``app``; calling it again changes nothing.

    Celery's signals are process-wide, so this instruments every Celery app of the process.
    """
    for signal, receiver in _RECEIVERS:
        signal.connect(receiver, weak=False, dispatch_uid=_uid(receiver))


__all__ = ["install"]
