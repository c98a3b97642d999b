"""Helpers for the Celery monitor tests: the monitor run without ``--url``, AMQP connections,
the monitoring-only RabbitMQ user, waiting.

Celery, kombu and py-amqp (the ``celery`` extra) are imported when a test uses them, not when
pytest collects: the unit tier runs with the ``test`` extra alone; a Celery test run without
the ``celery`` extra fails (ImportError), it is not skipped."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.rabbitmq import ADMIN, RabbitMQNode
from pipeline.monitor.rabbitmq import Api, api_from_urls
from tests.support.monitor import monitor_env

if TYPE_CHECKING:
    import amqp
    from celery import Celery

MONITOR_USER = ("tt-monitor", "tt-monitor-pass-1")
UNSTAMPED = "tests.celery_app.unstamped"  # a task the tests publish unstamped (celery_workers.unstamped)


def make_app(broker: str, **transport: Any) -> Celery:
    """``tests.celery_app.make_app``, imported now (see the module docstring)."""
    from tests import celery_app

    return celery_app.make_app(broker, **transport)


def celery_monitor_command(log: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.monitor", "--log", str(log), *args]


def run_celery_monitor(log: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline.monitor`` without ``--url`` (nor ``RQ_REDIS_URL``), run to its end."""
    return subprocess.run(
        celery_monitor_command(log, *args), env=monitor_env(), capture_output=True, text=True, timeout=timeout
    )


def start_celery_monitor(log: Path, *args: str) -> subprocess.Popen[str]:
    """The monitor's loop without ``--url``, in the background; the caller stops it."""
    return subprocess.Popen(
        celery_monitor_command(log, *args),
        env=monitor_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def rabbit_args(node: RabbitMQNode, user: tuple[str, str] = MONITOR_USER, vhost: str = "/") -> list[str]:
    """``--celery-broker`` and ``--rabbitmq-api`` for ``node`` as ``user``."""
    return ["--celery-broker", node.amqp_url(user, vhost), "--rabbitmq-api", node.api_url(user)]


def monitor_api(node: RabbitMQNode, vhost: str = "/", user: tuple[str, str] = MONITOR_USER) -> Api:
    return api_from_urls(node.api_url(user), node.amqp_url(user, vhost))


def amqp_connection(
    node: RabbitMQNode, user: tuple[str, str] = ADMIN, vhost: str = "/", **kwargs: Any
) -> amqp.Connection:
    """A connected py-amqp connection."""
    import amqp

    connection = amqp.Connection(
        host=f"127.0.0.1:{node.amqp_port}", userid=user[0], password=user[1], virtual_host=vhost, **kwargs
    )
    connection.connect()
    return connection


def wait_for(predicate: Callable[[], Any], timeout: float = 30, interval: float = 0.2) -> Any:
    """``predicate()``'s first truthy value; fails the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(interval)
