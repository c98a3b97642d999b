"""A Celery app the tests publish with (real ``apply_async``), on Redis or RabbitMQ.

STAND-IN for ``pipeline.celery.install(app)`` (another branch): until it is merged here,
``stamp`` below does what it will do, with exactly its names: the header
``task_time_published_at`` (float epoch seconds) and, for RabbitMQ, the AMQP ``timestamp``
property (int seconds). After the merge, call ``install(app)`` in ``make_app`` and drop
``stamp`` (``tests.celery_app.unstamped`` stays: a message published without it).
"""

from __future__ import annotations

import time
from typing import Any

from celery import Celery
from celery.signals import before_task_publish

from pipeline import settings
from tests.support.celery_monitor import UNSTAMPED  # a task whose messages the stand-in leaves alone

PUBLISHED_AT = settings.CELERY_PUBLISHED_HEADER  # the header pipeline.celery.install stamps


@before_task_publish.connect(weak=False, dispatch_uid="tests.celery_app.stamp")
def stamp(headers: dict[str, Any] | None = None, properties: dict[str, Any] | None = None, **_: Any) -> None:
    """The stand-in for pipeline.celery.install's publish hook (see the module docstring)."""
    if headers is None or headers.get("task") == UNSTAMPED:
        return
    now = time.time()
    headers[PUBLISHED_AT] = now
    if properties is not None:
        properties["timestamp"] = int(now)


def make_app(broker: str, **transport: Any) -> Celery:
    """An app publishing to ``broker``; ``transport`` goes to ``broker_transport_options``."""
    app = Celery("tests.celery_app", broker=broker, set_as_current=False)
    app.conf.broker_transport_options = transport
    app.conf.task_queue_max_priority = 10
    app.conf.broker_connection_retry_on_startup = False
    app.task(name="tests.celery_app.add")(add)
    app.task(name=UNSTAMPED)(unstamped)
    return app


def add(x: int, y: int) -> int:
    return x + y


def unstamped() -> None:
    return None
