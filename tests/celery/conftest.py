"""Fixtures of the Celery tests: a RabbitMQ node for the session, and each test run on both brokers."""

from __future__ import annotations

import pytest

from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer
from tests import celery_tasks as tasks
from tests.support.celery_workers import use_broker


@pytest.fixture(scope="session")
def rabbitmq(rabbitmq_node: RabbitMQNode) -> RabbitMQNode:
    """The session's RabbitMQ node (tests/conftest.py), shared with the queue-health tests."""
    return rabbitmq_node


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """The broker URL, emptied: the test Redis or the test RabbitMQ node."""
    if request.param == "redis":
        redis_server.connection().flushall()
        url = redis_server.url
    else:
        node: RabbitMQNode = request.getfixturevalue("rabbitmq")
        node.purge()
        url = node.url
    use_broker(tasks.app, url)
    return url
