"""Shared fixtures: a real redis-server and a real Elasticsearch for the session, cleaned per test.

And the tier checks of ``tests.support.tiers``: every test marked, the markers true.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from redis import Redis

from harness.es_cluster import ElasticsearchCluster
from harness.monitor import grant_monitor, monitor_url
from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer
from tests.support import tiers

REPO = Path(__file__).resolve().parents[1]
_GUARD = tiers.ProcessGuard()


def pytest_configure(config: pytest.Config) -> None:
    """Check, while tests run, that each starts only the services its markers name."""
    config.add_cleanup(tiers.guard_processes(_GUARD))


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse the run when a collected test has no tier marker or requests a service its markers do not name.

    Runs before ``-m`` deselects anything, so every collected test is checked whatever the selection.
    """
    if problems := tiers.marker_problems(items):
        raise pytest.UsageError("tier markers (see docs/testing.md#tiers):\n  " + "\n  ".join(problems))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    _GUARD.item = item
    yield
    _GUARD.item = None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Not during teardown: it stops what a setup already checked started, and wider-scoped
    fixtures (a session's RabbitMQ node) end in whichever test happens to run last."""
    _GUARD.item = None
    yield


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


# One RabbitMQ node for the session (harness/rabbitmq.py): the Celery line and queue-health tests.
@pytest.fixture(scope="session")
def rabbitmq_node() -> Iterator[RabbitMQNode]:
    node = RabbitMQNode()
    yield node
    node.stop()


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    connection = redis_server.connection()
    connection.flushall()
    yield connection
    connection.close()


@pytest.fixture
def monitor_user_url(redis: Redis, redis_server: RedisServer) -> Iterator[str]:
    """The read-only monitor user's URL; Redis itself healthy (maxmemory set, noeviction), so only queues speak."""
    grant_monitor(redis)
    redis.config_set("maxmemory", str(512 * 1024 * 1024))
    redis.config_set("maxmemory-policy", "noeviction")
    yield monitor_url(redis_server.url)
    redis.config_set("maxmemory", "0")
    redis.config_set("maxmemory-policy", "noeviction")


@pytest.fixture
def redis_url(redis: Redis, redis_server: RedisServer) -> str:
    return redis_server.url


class ElasticsearchTarget:
    """The cluster the tests use: one they started (``cluster`` set) or ``ES_URL``'s."""

    def __init__(self, url: str, username: str, password: str, cluster: ElasticsearchCluster | None) -> None:
        self.url, self.username, self.password, self.cluster = url, username, password, cluster

    def client(self) -> Elasticsearch:
        return Elasticsearch(self.url, basic_auth=(self.username, self.password), request_timeout=60)

    def bootstrap_env(self, **extra: str) -> dict[str, str]:
        """Environment for running ``python -m pipeline.bootstrap`` as a subprocess against this cluster."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "KIBANA_", "LOGSTASH_", "BOOTSTRAP_"))}
        env.update({"ES_URL": self.url, "ES_USERNAME": self.username, "ES_PASSWORD": self.password, **extra})
        return env


@pytest.fixture(scope="session")
def elasticsearch() -> Iterator[ElasticsearchTarget]:
    """``ES_URL`` (with ``ES_USERNAME``/``ES_PASSWORD``) when set, else a cluster from the integ-test zip.

    Never skips: a cluster that cannot be had fails the tests that need it.
    """
    if url := os.environ.get("ES_URL"):
        if os.environ.get("TASK_TIME_TESTS_DESTRUCTIVE") != "1":
            pytest.fail(
                "ES_URL points the tests at a cluster they change (they delete task-time indices and templates, "
                "and set the kibana_system and task_time_logstash passwords): set TASK_TIME_TESTS_DESTRUCTIVE=1 "
                "to confirm it is a throwaway cluster"
            )
        yield ElasticsearchTarget(
            url, os.environ.get("ES_USERNAME", "elastic"), os.environ.get("ES_PASSWORD", ""), cluster=None
        )
        return
    cluster = ElasticsearchCluster()
    try:
        yield ElasticsearchTarget(cluster.url, cluster.username, cluster.password, cluster)
    finally:
        cluster.stop()


@pytest.fixture
def es(elasticsearch: ElasticsearchTarget) -> Iterator[ElasticsearchTarget]:
    """The cluster with nothing of ours on it: no task-time indices, templates or policy."""
    client = elasticsearch.client()

    def clean() -> None:
        # The queue monitor's first: its index template composes task-time-retention.
        names = list(client.indices.get(index="queue-monitor-*", expand_wildcards="all"))
        if names:
            client.indices.delete(index=",".join(names))
        client.options(ignore_status=404).indices.delete_index_template(name="queue-monitor")
        client.options(ignore_status=404).cluster.delete_component_template(name="queue-monitor-mappings")
        # Wildcard deletes are refused by default (action.destructive_requires_name): name them.
        names = list(client.indices.get(index="task-time-*", expand_wildcards="all"))
        if names:
            client.indices.delete(index=",".join(names))
        client.options(ignore_status=404).indices.delete_index_template(name="task-time")
        for name in ("task-time-mappings", "task-time-retention"):
            client.options(ignore_status=404).cluster.delete_component_template(name=name)
        client.options(ignore_status=(400, 404)).perform_request("DELETE", "/_ilm/policy/task-time")

    clean()
    yield elasticsearch
    clean()
    client.close()


def bootstrap(target: ElasticsearchTarget, *args: str, timeout: float = 180, **env: str) -> subprocess.CompletedProcess:
    """Run ``python -m pipeline.bootstrap`` as a user would, against ``target``."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.bootstrap", *args],
        env=target.bootstrap_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


def service_user(es: ElasticsearchTarget, user: str, role: str, password: str, variable: str) -> Elasticsearch:
    """A client logged in as one of bootstrap's service users, its role exactly as elasticsearch/roles/ defines it.

    On the integ-test cluster the role and user go into the file realm (its native realm
    cannot store them: the distribution lacks analysis-common); on an ``ES_URL`` cluster
    bootstrap creates them, given the password in ``variable``.
    """
    assert bootstrap(es, "--skip-kibana").returncode == 0
    if es.cluster is not None:
        definition = json.loads((REPO / "elasticsearch" / "roles" / f"{role}.json").read_text())
        es.cluster.add_file_realm_user(user, password, {role: definition})
    else:
        done = bootstrap(es, "--skip-kibana", **{variable: password})
        assert done.returncode == 0, done.stderr
    return Elasticsearch(es.url, basic_auth=(user, password), request_timeout=30)


@pytest.fixture
def writer(es: ElasticsearchTarget) -> Elasticsearch:
    """A client logged in as Logstash's writer (see ``service_user``)."""
    role, variable = "task_time_logstash_writer", "LOGSTASH_WRITER_PASSWORD"
    return service_user(es, "task_time_logstash", role, "writer-pass-2", variable)
