"""A Celery app the tests publish with (real ``apply_async``), on Redis or RabbitMQ.

``make_app`` instruments it with ``pipeline.celery.install``, as a user's producer would be:
every message carries the header ``task_time_published_at`` (float epoch seconds) and, on
RabbitMQ, the AMQP ``timestamp`` property (int seconds). A message published inside
``tests.support.celery_workers.unstamped()`` carries neither, as from a producer without it.
"""

from __future__ import annotations

from typing import Any

from celery import Celery

from pipeline.celery import install
from tests.support.celery_monitor import UNSTAMPED


def make_app(broker: str, **transport: Any) -> Celery:
    """An instrumented app publishing to ``broker``; ``transport`` goes to ``broker_transport_options``."""
    app = Celery("tests.celery_app", broker=broker, set_as_current=False)
    app.conf.broker_transport_options = transport
    app.conf.task_queue_max_priority = 10
    app.conf.broker_connection_retry_on_startup = False
    app.task(name="tests.celery_app.add")(add)
    app.task(name=UNSTAMPED)(unstamped)
    install(app)
    return app


def add(x: int, y: int) -> int:
    return x + y


def unstamped() -> None:
    return None
