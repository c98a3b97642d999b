"""Celery on RabbitMQ: the monitor reads a real node's management API as a user with only the
``monitoring`` tag and ``'^$' '^$' '^$'`` on the vhost, queues filled by a real Celery producer."""

from __future__ import annotations

import urllib.error
from typing import Any
from urllib.parse import quote

import pytest

from harness.rabbitmq import ADMIN, RabbitMQNode
from pipeline.monitor import rabbitmq
from pipeline.monitor.celery_judge import judge_celery
from pipeline.monitor.judge import Thresholds
from pipeline.monitor.rabbitmq import take_rabbit_sample
from tests.support.celery_monitor import MONITOR_USER, UNSTAMPED, amqp_connection, make_app, monitor_api, wait_for
from tests.support.celery_workers import unstamped

pytestmark = [pytest.mark.rabbitmq, pytest.mark.celery, pytest.mark.jvm]


@pytest.fixture(scope="module")
def node(rabbitmq_node: RabbitMQNode) -> RabbitMQNode:
    rabbitmq_node.add_monitoring_user(MONITOR_USER)
    return rabbitmq_node


def _queue(node: RabbitMQNode, name: str, vhost: str = "/") -> Any:
    return node.api("GET", f"/api/queues/{quote(vhost, safe='')}/{quote(name, safe='')}")


def test_the_monitoring_user_samples_but_can_neither_publish_nor_consume(node: RabbitMQNode) -> None:
    import amqp

    admin = amqp_connection(node)
    admin.channel().queue_declare("perm-q", auto_delete=False)
    admin.channel().basic_publish(amqp.Message("x"), routing_key="perm-q")
    admin.close()
    wait_for(lambda: _queue(node, "perm-q").get("messages") == 1)
    monitor = amqp_connection(node, MONITOR_USER)  # it may open a connection, nothing more
    channel = monitor.channel()
    with pytest.raises(amqp.exceptions.AccessRefused):
        channel.basic_publish_confirm(amqp.Message("forged"), routing_key="perm-q")  # waits for the broker's answer
    with pytest.raises(amqp.exceptions.AccessRefused):
        monitor.channel().basic_get("perm-q")
    with pytest.raises(amqp.exceptions.AccessRefused):
        monitor.channel().basic_consume("perm-q", callback=lambda message: None)
    monitor.collect()
    publish = {"properties": {}, "routing_key": "perm-q", "payload": "forged", "payload_encoding": "string"}
    with pytest.raises(urllib.error.HTTPError):
        node.api("POST", "/api/exchanges/%2F/amq.default/publish", publish, user=MONITOR_USER)
    with pytest.raises(urllib.error.HTTPError):
        node.api(
            "POST",
            "/api/queues/%2F/perm-q/get",
            {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"},
            user=MONITOR_USER,
        )
    assert _queue(node, "perm-q")["messages"] == 1  # nothing published, nothing taken
    [queue] = take_rabbit_sample(monitor_api(node), ["perm-q"]).queues
    assert (queue.depth, queue.consumers) == (1, 0)


def test_queue_figures_from_a_real_celery_producer(node: RabbitMQNode) -> None:
    import amqp

    app = make_app(node.amqp_url())
    for _ in range(3):
        app.tasks["tests.celery_app.add"].apply_async((1, 2), queue="mq-work")
    with unstamped():  # a producer without pipeline.celery.install
        app.tasks[UNSTAMPED].apply_async(queue="mq-bare")
    api = monitor_api(node)
    wait_for(lambda: [q.depth for q in take_rabbit_sample(api, ["mq-work", "mq-bare"]).queues] == [3, 1])
    sample = take_rabbit_sample(api, ["mq-work", "mq-bare", "mq-absent"])
    work, bare, absent = sample.queues
    assert (work.depth, work.reserved, work.consumers) == (3, 0, 0)
    assert work.latency is not None and 0 <= work.latency < 30  # from the AMQP timestamp Celery's stamp set
    assert bare.latency is None and "no AMQP timestamp" in (bare.unknown_latency or "")
    verdicts = judge_celery(sample, None, Thresholds()).queues
    assert (
        verdicts["mq-work"].status == "critical" and verdicts["mq-work"].reason == "3 messages waiting and no consumer"
    )
    assert "latency unknown" in verdicts["mq-bare"].reason and absent.missing
    assert "no such queue" in verdicts["mq-absent"].reason
    node_stats = sample.nodes[0]
    assert node_stats.name == node.name and 0 < node_stats.mem_used < node_stats.mem_limit

    consumer = amqp_connection(node)
    channel = consumer.channel()
    channel.basic_qos(0, 1, False)
    taken: list[amqp.Message] = []
    channel.basic_consume("mq-work", callback=taken.append)
    consumer.drain_events(timeout=5)
    wait_for(
        lambda: (
            (lambda q: (q.depth, q.reserved, q.consumers))(take_rabbit_sample(api, ["mq-work"]).queues[0]) == (2, 1, 1)
        )
    )
    assert judge_celery(take_rabbit_sample(api, ["mq-work"]), None, Thresholds()).queues["mq-work"].status == "ok"
    consumer.close()


def test_a_quorum_queue_has_no_head_timestamp(node: RabbitMQNode) -> None:
    node.api("PUT", "/api/queues/%2F/mq-quorum", {"durable": True, "arguments": {"x-queue-type": "quorum"}})
    publish = {"properties": {"timestamp": 1}, "routing_key": "mq-quorum", "payload": "x", "payload_encoding": "string"}
    node.api("POST", "/api/exchanges/%2F/amq.default/publish", publish)
    [queue] = wait_for(lambda: [q for q in take_rabbit_sample(monitor_api(node), ["mq-quorum"]).queues if q.depth == 1])
    assert queue.latency is None and queue.unknown_latency == "quorum queues do not report head_message_timestamp"


def test_two_requests_per_sample_for_10_or_1000_queues(node: RabbitMQNode, monkeypatch: pytest.MonkeyPatch) -> None:
    for vhost, count in (("small", 10), ("big", 1000)):
        node.api("PUT", f"/api/vhosts/{vhost}")
        node.api("PUT", f"/api/permissions/{vhost}/{ADMIN[0]}", {"configure": ".*", "write": ".*", "read": ".*"})
        node.ctl("set_permissions", "-p", vhost, MONITOR_USER[0], "^$", "^$", "^$")
        connection = amqp_connection(node, vhost=vhost)
        channel = connection.channel()
        for index in range(count):
            channel.queue_declare(f"q{index:04}", auto_delete=False)
        connection.close()
    calls: list[str] = []
    urlopen = rabbitmq.urllib.request.urlopen

    def counting(request: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(request.full_url)
        return urlopen(request, *args, **kwargs)

    monkeypatch.setattr(rabbitmq.urllib.request, "urlopen", counting)
    try:
        for vhost, count in (("small", 10), ("big", 1000)):
            calls.clear()
            sample = take_rabbit_sample(monitor_api(node, vhost))
            assert len(sample.queues) == count and len(calls) == sample.requests == 2, calls
    finally:
        monkeypatch.undo()
        for vhost in ("small", "big"):
            node.api("DELETE", f"/api/vhosts/{vhost}")
