"""One task-time line per Celery task execution, from Celery's signals.

Who writes which line:

- The process that runs the task (the pool child under prefork; the worker itself under
  solo, threads, gevent and eventlet) times it from ``task_prerun`` to ``task_postrun``
  on the monotonic clock and writes ``finished``, ``failed``, ``retry`` and ``timeout``
  (an uncaught ``SoftTimeLimitExceeded``, or a ``TimeLimitExceeded`` raised in the task's
  own process). A postrun without a state (the child ended by a hard time limit, Celery
  5.7) writes nothing: the main process writes that one. Under gevent, eventlet and
  threads the failure signal that follows comes in the same process, and writes the line
  with the facts and the clock of that postrun. A task ended there by
  ``revoke(terminate=True)`` is ``killed``, whichever comes first, its postrun or the
  revoked signal (gevent ends the task after the signal).
- The worker's main process writes ``timeout`` (the hard time limit, ``TimeLimitExceeded``)
  and ``killed`` (``WorkerLostError``: SIGKILL, OOM; or ``revoke(terminate=True)`` of a
  running task) for a task it did not run itself, timed from ``Request.time_start``, the
  moment the pool reported the task accepted. It writes each task id once, whatever
  number of ``task_failure`` signals Celery sends for it (two on 5.7).

A task revoked or expired before it started ran nothing and gets no line.
"""

from __future__ import annotations

import os
import sys
import time
import weakref
from collections import OrderedDict
from typing import Any

from billiard.exceptions import SoftTimeLimitExceeded, TimeLimitExceeded, WorkerLostError

from pipeline import settings, tasklog
from pipeline.appender import AppendError
from pipeline.lines.task import CELERY, FAILED, FINISHED, KILLED, RETRY, TIMEOUT, TaskRun

from .stamp import HEADER, ready_at

# The postrun states written by the process that ran the task; any other state (None) is not.
_STATES = {"SUCCESS": FINISHED, "FAILURE": FAILED, "RETRY": RETRY, "IGNORED": FINISHED, "REJECTED": FAILED}

# Task id -> (monotonic start, wait, queue, worker, task name) for the executions running in this process.
_running: dict[str, tuple[float, float | None, str | None, str, str]] = {}
# Task id -> the main process's Request, from task_received until it is dropped.
_requests: weakref.WeakValueDictionary[str, Any] = weakref.WeakValueDictionary()
# Task ids the main process wrote a timeout or killed line for, oldest first.
_written: OrderedDict[str, Any] = OrderedDict()
# Executions this process ran whose postrun came without a state (gevent, eventlet, threads:
# the failure signal that follows, in this same process, writes their line with these facts).
_unwritten: OrderedDict[str, Any] = OrderedDict()
# Task ids this process is running that ``revoke(terminate=True)`` is ending: gevent kills
# the task after the revoked signal, and its postrun, without a state, writes ``killed``.
_terminating: OrderedDict[str, Any] = OrderedDict()
_disabled = False


def worker_name(node: object, pid: object) -> str:
    """``celery@host.4711``: the worker node's name and the pid of the process that ran the task."""
    return f"{node or '-'}.{pid or '-'}"


def queue_of(delivery_info: object) -> str | None:
    """The queue a message was delivered from: its routing key (Celery's direct routing), else ``queue``."""
    if not isinstance(delivery_info, dict):
        return None
    return delivery_info.get("routing_key") or delivery_info.get("queue")


def _remember(found: OrderedDict[str, Any], task_id: str, value: Any) -> None:
    """Keep ``value`` under ``task_id``, forgetting the oldest beyond ``settings.CELERY_WRITTEN_IDS``."""
    found[task_id] = value
    while len(found) > settings.CELERY_WRITTEN_IDS:
        found.popitem(last=False)


def _write(run: TaskRun) -> None:
    if not _disabled:
        tasklog.write_task_line(run)


# ----------------------------------------------------------------------- the process that runs the task

# These two run around every task: what they look up is looked up once per process or
# once per task, and the keywords Celery sends are named so no dict is built for them.
_pid = os.getpid()
_names: dict[object, str] = {}  # node name -> worker_name(node, pid) for this process


def _forked() -> None:
    """In a forked child (a prefork pool process): its own pid, and names made with it."""
    global _pid
    _pid = os.getpid()
    _names.clear()


os.register_at_fork(after_in_child=_forked)


def on_prerun(
    task_id: str | None = None,
    task: Any = None,
    signal: Any = None,
    sender: Any = None,
    args: Any = None,
    kwargs: Any = None,
    **_: Any,
) -> None:
    """``task_prerun``: start the clock; note what the line will say of the message (once, here)."""
    wall = time.time()
    start = time.monotonic()
    if task is None:
        return
    request = task.request
    published = getattr(request, HEADER, None)
    if type(published) is float and getattr(request, "eta", None) is None:  # the common case
        wait: float | None = wall - published
    else:
        ready = ready_at(request)
        wait = None if ready is None else wall - ready
    node = getattr(request, "hostname", None)
    worker = _names.get(node)
    if worker is None:
        worker = _names[node] = worker_name(node, _pid)
    _running[task_id or ""] = (start, wait, queue_of(getattr(request, "delivery_info", None)), worker, task.name)


def on_postrun(
    task_id: str | None = None,
    retval: Any = None,
    state: str | None = None,
    signal: Any = None,
    sender: Any = None,
    task: Any = None,
    args: Any = None,
    kwargs: Any = None,
    **_: Any,
) -> None:
    """``task_postrun``: write the line of the execution that just ended in this process."""
    end = time.monotonic()
    started = _running.pop(task_id or "", None)
    if started is None:
        return
    status = _STATES.get(state)  # type: ignore[arg-type]
    if status is None:
        key = task_id or ""
        if key not in _terminating:  # ended by a hard time limit or lost: the failure that follows writes it
            _remember(_unwritten, key, started)
            return
        del _terminating[key]  # ended here by revoke(terminate=True), after its signal
        status = KILLED
    if status == FAILED and isinstance(retval, SoftTimeLimitExceeded | TimeLimitExceeded):
        status = TIMEOUT
    start, wait, queue, worker, name = started
    if not _disabled:
        tasklog.write_task_line(TaskRun(name, end - start, queue, status, wait, task_id, worker, CELERY))


# ----------------------------------------------------------------------- the worker's main process


def on_received(request: Any = None, **_: Any) -> None:
    """``task_received``: keep the Request, for its start time should its child die."""
    if request is not None and getattr(request, "id", None):
        _requests[request.id] = request


def _write_ended(task_id: str, status: str, sender: Any) -> None:
    """The main process's line for a task it did not run: once per task id, if the task had started."""
    if task_id in _running or task_id in _written:  # this process is running it, or wrote it already
        return
    own = _unwritten.pop(task_id, None)
    if own is not None:  # this process ran it: its own clock and facts
        start, wait, queue, worker, name = own
        _remember(_written, task_id, None)
        _write(TaskRun(name, time.monotonic() - start, queue, status, wait, task_id, worker, CELERY))
        return
    request = _requests.get(task_id)
    started = getattr(request, "time_start", None)
    if request is None or not started:  # never started: nothing ran
        return
    _remember(_written, task_id, None)
    ready = ready_at(getattr(request, "request_dict", None) or {})
    _write(
        TaskRun(
            task_name=getattr(request, "name", None) or getattr(sender, "name", None),
            task_time=max(time.time() - started, 0.0),
            queue=queue_of(getattr(request, "delivery_info", None)),
            status=status,
            wait_time=None if ready is None else started - ready,
            job_id=task_id,
            worker=worker_name(getattr(request, "hostname", None), getattr(request, "worker_pid", None)),
            system=CELERY,
        )
    )


def on_failure(
    sender: Any = None, task_id: str | None = None, exception: BaseException | None = None, **_: Any
) -> None:
    """``task_failure``: the hard time limit and a lost child, seen by the main process."""
    if not task_id:
        return
    if isinstance(exception, TimeLimitExceeded):
        _write_ended(task_id, TIMEOUT, sender)
    elif isinstance(exception, WorkerLostError):
        _write_ended(task_id, KILLED, sender)


def on_revoked(sender: Any = None, request: Any = None, terminated: bool = False, **_: Any) -> None:
    """``task_revoked``: a running task ended by ``revoke(terminate=True)`` is ``killed``; others ran nothing."""
    task_id = getattr(request, "id", None)
    if not (terminated and task_id):
        return
    if task_id in _running:  # running in this process (gevent): the kill lands after this signal
        _remember(_terminating, task_id, None)
    else:
        _write_ended(task_id, KILLED, sender)


def on_worker_init(**_: Any) -> None:
    """``worker_init``: open the log once at start; if it cannot be, say so in one line and run the tasks anyway."""
    global _disabled
    try:
        tasklog.open_task_log()
    except (AppendError, ValueError) as exc:
        _disabled = True  # inherited by forked children: one line for the whole worker
        sys.stderr.write(f"{tasklog.LOGGER_NAME}: {exc}; the tasks run without task-time lines\n")
        sys.stderr.flush()
