"""The publish stamp: set on every message by the producer, read back by the worker as the wait time.

The header ``task_time_published_at`` (``settings.CELERY_PUBLISHED_HEADER``) holds the
publish time as float epoch seconds and travels on both brokers; the AMQP ``timestamp``
property (whole seconds) is set too, so RabbitMQ's management API shows the age of a
queue's head message (``head_message_timestamp``). A retry is a new publish: it gets a
new stamp.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Any

from pipeline import settings

HEADER = settings.CELERY_PUBLISHED_HEADER


def stamp_message(headers: dict[str, Any] | None = None, properties: dict[str, Any] | None = None, **_: Any) -> None:
    """``before_task_publish`` receiver: stamp the message about to be published with the time now."""
    now = time.time()
    if headers is not None:
        headers[HEADER] = now
    if properties is not None:
        # An AMQP basic property of type long long: py-amqp packs it as an int, never a float.
        properties["timestamp"] = int(now)


def epoch_of(eta: object) -> float | None:
    """An ETA as Celery sends it (an ISO 8601 string, a datetime, or None) in epoch seconds.

    A time without a zone is taken as UTC, Celery's default (``enable_utc``).
    """
    if eta is None or eta == "":
        return None
    if isinstance(eta, str):
        try:
            eta = datetime.datetime.fromisoformat(eta)
        except ValueError:
            return None
    if not isinstance(eta, datetime.datetime):
        return None
    if eta.tzinfo is None:
        eta = eta.replace(tzinfo=datetime.UTC)
    return eta.timestamp()


def ready_at(fields: Mapping[str, Any] | Any) -> float | None:
    """When a message became ready to run: its publish stamp, or its ETA when that is later.

    ``fields`` is the request as the child sees it (``task.request``, attributes) or as the
    main process sees it (``request_dict``, keys). None without a stamp: a producer without
    ``install`` gets no wait time, never a wrong one.
    """
    if isinstance(fields, Mapping):
        published, eta = fields.get(HEADER), fields.get("eta")
    else:
        published, eta = getattr(fields, HEADER, None), getattr(fields, "eta", None)
    if type(published) is not float and (isinstance(published, bool) or not isinstance(published, int | float)):
        return None
    if eta is None:  # the common case, kept short: this runs once per task
        return published
    eta_seconds = epoch_of(eta)
    return float(published) if eta_seconds is None else max(float(published), eta_seconds)
