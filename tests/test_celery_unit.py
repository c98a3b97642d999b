"""Celery instrumentation without a broker: the optional import, the stamp, the wait's start, the status rules."""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_queue_and_worker_names() -> None:
    from pipeline.celery.execution import queue_of, worker_name

    assert queue_of({"exchange": "", "routing_key": "high"}) == "high"
    assert queue_of(None) is None
    assert worker_name("celery@web-1", 4711) == "celery@web-1.4711"
