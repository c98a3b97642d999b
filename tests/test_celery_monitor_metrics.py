"""The metrics endpoint of a real monitor sampling Celery's queues: on a real redis-server beside RQ's
queues (each as its read-only user), and on a real RabbitMQ node (as the monitoring-only user),
filled by real Celery producers. Every value served equals the log line of the same sample."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from redis import Redis
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer
from pipeline.lines.queue import STATUSES, match_line
from pipeline.monitor import celery_acl
from tests import tasks
from tests.support.celery_monitor import MONITOR_USER, make_app, rabbit_args, wait_for
from tests.support.metrics import MetricsMonitor, scrape, value

ONE_SAMPLE = ("--interval", "3600", "--name", "celery-metrics")
PASSWORD = "celery-metrics-pass-1"

Lines = dict[tuple[str, str], dict[str, bytes]]


def _lines(log: Path) -> Lines:
    """The sample's lines by (system, queue or broker name): ``("celery", "")`` is Celery's Redis line."""
    found: Lines = {}
    for line in log.read_bytes().splitlines():
        kind, match = match_line(line)  # type: ignore[misc]
        fields = match.groupdict()
        system = (fields.get("system") or b"rq").decode()
        name = fields.get("queue") if kind.endswith("queue") else fields.get("node")
        found[(system, (name or b"").decode())] = fields
    return found


def _same(metrics: dict[Any, float], metric: str, field: bytes, places: int, **labels: str) -> None:
    assert round(value(metrics, metric, **labels), places) == float(field), (metric, labels, field)


@pytest.mark.redis
@pytest.mark.celery
def test_one_monitor_serves_rq_and_celery_on_redis_each_with_its_labels(
    redis: Redis, redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    redis.execute_command("ACL", "SETUSER", celery_acl.USER, "reset", "on", f">{PASSWORD}", *celery_acl.rules())
    celery_url = redis_server.url.replace("redis://", f"redis://{celery_acl.USER}:{PASSWORD}@", 1)
    redis.config_set("maxmemory", "64mb")
    add = make_app(redis_url).tasks["tests.celery_app.add"]
    for priority in (0, 9):
        add.apply_async((1, 2), queue="default", priority=priority)  # Celery's "default": two priority lists
    Queue("default", connection=redis).enqueue(tasks.no_op)  # and RQ's "default"
    time.sleep(0.3)  # the oldest message has waited
    log = tmp_path / "m.log"
    monitor = MetricsMonitor(monitor_url(redis_server.url), log, *ONE_SAMPLE, "--celery-broker", celery_url)
    try:
        document = monitor.wait_for_sample()
        metrics = scrape(monitor.port)
    finally:
        monitor.stop()
        redis.config_set("maxmemory", "0")  # the session's Redis, as the next test expects it
    lines = _lines(log)
    broker = f"redis://127.0.0.1:{redis_server.port}/0"
    assert set(document) == {"monitor", "rq", "celery"} and document["monitor"] == "celery-metrics"
    assert document["rq"]["broker"] == document["celery"]["broker"] == broker
    celery = {"system": "celery", "broker": broker}
    line = lines[("celery", "")]
    _same(metrics, "task_time_broker_memory_used_bytes", line["used_memory"], 0, **celery)
    _same(metrics, "task_time_broker_maxmemory_bytes", line["maxmemory"], 0, **celery)
    _same(metrics, "task_time_broker_unacked_messages", line["unacked"], 0, **celery)
    _same(metrics, "task_time_monitor_sample_duration_seconds", line["sample_time"], 6, **celery)
    assert round(value(metrics, "task_time_broker_memory_used_ratio", **celery) * 100, 2) == float(
        line["memory_used_pct"]
    )
    assert STATUSES[int(value(metrics, "task_time_broker_status", **celery))] == line["status"].decode()
    queue = lines[("celery", "default")]
    assert int(queue["depth"]) == 2 and float(queue["latency"]) >= 0.3
    _same(metrics, "task_time_queue_depth", queue["depth"], 0, **celery, queue="default")
    _same(metrics, "task_time_queue_latency_seconds", queue["latency"], 6, **celery, queue="default")
    assert STATUSES[int(value(metrics, "task_time_queue_status", **celery, queue="default"))] == "ok"
    served = document["celery"]["queues"]["default"]
    assert (served["depth"], round(served["latency"], 6), served["status"]) == (2, float(queue["latency"]), "ok")
    assert served["reserved"] is None and served["consumers"] is None  # Redis cannot tell: no made-up zero
    assert not [name for name, labels in metrics if name == "task_time_queue_consumers"]
    # RQ's queue of the same name is its own series, as its own line says.
    rq_queue = lines[("rq", "default")]
    _same(metrics, "task_time_queue_depth", rq_queue["depth"], 0, system="rq", broker=broker, queue="default")
    assert document["rq"]["queues"]["default"]["depth"] == int(rq_queue["depth"]) == 1


@pytest.mark.rabbitmq
@pytest.mark.celery
def test_celery_on_rabbitmq_serves_each_node_and_each_queue_as_the_monitoring_user(
    rabbitmq_node: RabbitMQNode, tmp_path: Path
) -> None:
    node = rabbitmq_node
    node.add_monitoring_user(MONITOR_USER)
    add = make_app(node.amqp_url()).tasks["tests.celery_app.add"]
    for _ in range(3):
        add.apply_async((1, 2), queue="metrics-q")  # no consumer: critical
    wait_for(lambda: any(q["name"] == "metrics-q" and q.get("messages") == 3 for q in node.api("GET", "/api/queues")))
    log = tmp_path / "m.log"
    args = [*ONE_SAMPLE, *rabbit_args(node), "--queues", "metrics-q"]
    monitor = MetricsMonitor(None, log, *args)
    try:
        document = monitor.wait_for_sample()
        metrics = scrape(monitor.port)
    finally:
        monitor.stop()
    lines = _lines(log)
    broker = f"amqp://127.0.0.1:{node.amqp_port}//"
    assert set(document) == {"monitor", "celery"} and document["celery"]["broker"] == broker
    assert all(dict(labels)["system"] == "celery" and dict(labels)["broker"] == broker for _, labels in metrics)
    celery = {"system": "celery", "broker": broker}
    node_line = lines[("celery", node.name)]
    _same(metrics, "task_time_broker_memory_used_bytes", node_line["used_memory"], 0, **celery, node=node.name)
    _same(metrics, "task_time_broker_maxmemory_bytes", node_line["maxmemory"], 0, **celery, node=node.name)
    assert value(metrics, "task_time_broker_memory_alarm", **celery, node=node.name) == 0
    assert STATUSES[int(value(metrics, "task_time_broker_status", **celery, node=node.name))] == "ok"
    queue = lines[("celery", "metrics-q")]
    assert (int(queue["depth"]), int(queue["consumers"]), queue["status"]) == (3, 0, b"critical")
    _same(metrics, "task_time_queue_depth", queue["depth"], 0, **celery, queue="metrics-q")
    _same(metrics, "task_time_queue_consumers", queue["consumers"], 0, **celery, queue="metrics-q")
    _same(metrics, "task_time_queue_reserved_messages", queue["reserved"], 0, **celery, queue="metrics-q")
    _same(metrics, "task_time_queue_latency_seconds", queue["latency"], 6, **celery, queue="metrics-q")
    assert value(metrics, "task_time_queue_status", **celery, queue="metrics-q") == 2
    served = document["celery"]["queues"]["metrics-q"]
    assert (served["depth"], served["consumers"], served["reserved"], served["status"]) == (3, 0, 0, "critical")
    assert document["celery"]["status"] == node_line["status"].decode()
