"""Celery instrumentation without a broker: the optional import, the stamp, the wait's start, the status rules."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import settings

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]


def test_the_rq_parts_never_import_celery() -> None:
    modules = "pipeline.job, pipeline.worker, pipeline.tasklog, pipeline.report.cli"
    code = f"import sys, {modules}; print('celery' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_producer_stamps_the_header_in_float_seconds_and_the_amqp_timestamp_in_whole_seconds() -> None:
    from pipeline.celery import stamp

    headers: dict = {}
    properties: dict = {}
    stamp.stamp_message(headers=headers, properties=properties, body=b"", routing_key="q")
    published = headers[settings.CELERY_PUBLISHED_HEADER]
    assert isinstance(published, float) and settings.CELERY_PUBLISHED_HEADER == "task_time_published_at"
    assert properties["timestamp"] == int(published) and isinstance(properties["timestamp"], int)


def test_the_wait_runs_from_the_later_of_publish_and_eta_and_not_at_all_without_a_stamp() -> None:
    from pipeline.celery.stamp import HEADER, ready_at

    eta = datetime(2026, 11, 21, 10, 0, 5, tzinfo=UTC)
    published = datetime(2026, 11, 21, 10, 0, tzinfo=UTC).timestamp()
    assert ready_at({HEADER: published, "eta": eta.isoformat()}) == eta.timestamp()
    assert ready_at({HEADER: published + 10, "eta": eta.isoformat()}) == published + 10
    assert ready_at({HEADER: published, "eta": None}) == published
    assert ready_at({HEADER: published, "eta": "2026-11-21T10:00:05"}) == eta.timestamp()  # naive: UTC
    assert ready_at(SimpleNamespace(**{HEADER: published, "eta": None})) == published
    assert ready_at({"eta": eta.isoformat()}) is None  # no stamp: no wait time, never a wrong one
    assert ready_at({HEADER: "soon"}) is None and ready_at({HEADER: True}) is None


def test_install_twice_connects_each_receiver_once() -> None:
    from celery import Celery, signals

    import pipeline.celery

    app = Celery("unit", broker="memory://")
    pipeline.celery.install(app)
    before = len(signals.task_postrun.receivers)
    pipeline.celery.install(app)
    assert len(signals.task_postrun.receivers) == before


def test_the_request_is_kept_per_task_only_where_a_pool_child_may_end_the_task() -> None:
    from celery import Celery, concurrency, signals

    import pipeline.celery
    from pipeline.celery import execution, runs_tasks_in_process

    def keeps_requests() -> bool:
        return any(receiver is execution.on_received for _, receiver in signals.task_received.receivers)

    # The pool as the worker has it at worker_init: the CLI's class, or a name from the config.
    in_process = ["solo", "threads", "gevent", "eventlet", *map(concurrency.get_implementation, ("solo", "threads"))]
    in_process.append(concurrency.get_implementation("gevent"))
    elsewhere = ["prefork", "processes", concurrency.get_implementation("prefork"), "mine:Pool", None, object]
    app = Celery("unit", broker="memory://")
    pipeline.celery.install(app)
    connected = [receiver for _, receiver in signals.worker_init.receivers]
    assert pipeline.celery.keep_requests_only_for_pool_children in connected
    try:
        for pool in [*in_process, *elsewhere]:
            pipeline.celery.install(app)
            assert keeps_requests()
            # What worker_init calls (sent here, it would also open the task log of this process).
            pipeline.celery.keep_requests_only_for_pool_children(sender=SimpleNamespace(pool_cls=pool))
            assert runs_tasks_in_process(pool) is (pool in in_process)
            assert keeps_requests() is (pool in elsewhere), pool
            assert any(receiver is execution.on_prerun for _, receiver in signals.task_prerun.receivers)
    finally:
        pipeline.celery.install(app)


def test_queue_and_worker_names() -> None:
    from pipeline.celery.execution import queue_of, worker_name

    assert queue_of({"exchange": "", "routing_key": "high"}) == "high"
    assert queue_of(None) is None
    assert worker_name("celery@web-1", 4711) == "celery@web-1.4711"


_ids = itertools.count()


def _run_task(monkeypatch: pytest.MonkeyPatch, state: str | None = "SUCCESS", retval: object = None, **request: object):
    """One execution through the receivers, with a stand-in task; the TaskRuns written."""
    from pipeline import tasklog
    from pipeline.celery import execution

    written: list = []
    monkeypatch.setattr(tasklog, "write_task_line", written.append)
    fields = {"eta": None, "hostname": "w1@host", "delivery_info": {"exchange": "", "routing_key": "high"}, **request}
    task = SimpleNamespace(name="proj.add", request=SimpleNamespace(**fields))
    task_id = f"id-{next(_ids)}"
    execution.on_prerun(task_id=task_id, task=task, args=(), kwargs={}, signal=None, sender=task)
    execution.on_postrun(task_id=task_id, task=task, retval=retval, state=state, args=(), kwargs={}, sender=task)
    execution._unwritten.pop(task_id, None)
    return written


def test_the_receivers_write_the_facts_of_the_execution(monkeypatch: pytest.MonkeyPatch) -> None:
    from billiard.exceptions import SoftTimeLimitExceeded

    from pipeline.celery.stamp import HEADER

    before = time.time()
    [run] = _run_task(monkeypatch, **{HEADER: before - 2.0})
    assert (run.task_name, run.queue, run.status, run.system) == ("proj.add", "high", "finished", "celery")
    assert str(run.job_id).startswith("id-")
    assert run.worker == f"w1@host.{os.getpid()}" and 0 <= run.task_time < 1
    assert 2.0 <= run.wait_time < 2.0 + (time.time() - before)
    [run] = _run_task(monkeypatch, **{HEADER: int(before) - 2})  # a whole-second stamp counts too
    assert 2.0 <= run.wait_time < 4.0
    eta = datetime.fromtimestamp(before - 1.0, UTC).isoformat()  # later than the stamp: the wait runs from it
    [run] = _run_task(monkeypatch, **{HEADER: before - 2.0, "eta": eta})
    assert 1.0 <= run.wait_time < 2.0
    [run] = _run_task(monkeypatch)  # no stamp: no wait time
    assert run.wait_time is None and run.status == "finished"
    assert [run.status for run in _run_task(monkeypatch, "RETRY")] == ["retry"]
    assert [run.status for run in _run_task(monkeypatch, "FAILURE", ValueError())] == ["failed"]
    assert [run.status for run in _run_task(monkeypatch, "FAILURE", SoftTimeLimitExceeded())] == ["timeout"]
    assert _run_task(monkeypatch, None) == []  # ended by a hard limit: the failure that follows writes it


@pytest.mark.parametrize("signal_first", [True, False], ids=["revoked-then-postrun", "postrun-then-revoked"])
def test_a_task_terminated_in_the_process_that_runs_it_is_killed_once(
    monkeypatch: pytest.MonkeyPatch, signal_first: bool
) -> None:
    from pipeline import tasklog
    from pipeline.celery import execution

    written: list = []
    monkeypatch.setattr(tasklog, "write_task_line", written.append)
    task = SimpleNamespace(name="proj.sleep", request=SimpleNamespace(eta=None, hostname="w1@host", delivery_info={}))
    task_id = f"id-{next(_ids)}"
    execution.on_prerun(task_id=task_id, task=task)
    time.sleep(0.05)

    def revoked() -> None:
        execution.on_revoked(sender=None, request=SimpleNamespace(id=task_id), terminated=True)

    def postrun() -> None:  # the task ended by the kill: a postrun without a state
        execution.on_postrun(task_id=task_id, task=task, retval=None, state=None)

    for step in (revoked, postrun) if signal_first else (postrun, revoked):
        step()
    [run] = written
    assert (run.job_id, run.task_name, run.status) == (task_id, "proj.sleep", "killed")
    assert 0.05 <= run.task_time < 1.0  # its own clock, from its prerun


def test_a_forked_child_names_itself_with_its_own_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    [run] = _run_task(monkeypatch)  # the parent's name is made and kept first
    assert run.worker == f"w1@host.{os.getpid()}"
    reading, writing = os.pipe()
    child = os.fork()
    if child == 0:  # a prefork pool process
        try:
            [run] = _run_task(monkeypatch)
            os.write(writing, f"{run.worker} {os.getpid()}".encode())
        finally:
            os._exit(0)
    os.close(writing)
    os.waitpid(child, 0)
    worker, pid = os.read(reading, 200).decode().split()
    os.close(reading)
    assert worker == f"w1@host.{pid}" and pid != str(os.getpid())
