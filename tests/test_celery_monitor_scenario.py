"""The seed's scenario on RabbitMQ: a producer publishes with no consumer until the node's memory
alarm blocks it; the monitor's loop says warn, then critical, before the publisher is blocked.

The node's ``vm_memory_high_watermark.absolute`` is set at run time just above what it uses
(used = 70 % of the limit); the producer is py-amqp, which advertises ``connection.blocked``
and calls ``on_blocked`` when the node blocks it; the API's connection state says so too.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import amqp
import pytest

from pipeline.monitor.rabbitmq import take_rabbit_sample
from tests.support.celery_monitor import (
    MONITOR_USER,
    amqp_connection,
    monitor_api,
    rabbit_args,
    start_celery_monitor,
    wait_for,
)
from tests.support.monitor import read_events, stop
from tests.support.rabbitmq_node import RabbitMQNode

pytestmark = [pytest.mark.rabbitmq]
CHUNK = 64 * 1024
# About 1.5 MB/s: the API's node memory figure is refreshed every 5 s, so memory must take
# several refreshes to climb from 80 % to 90 % of the limit for a sample to land between.
PAUSE = 0.04


def _publish_until_stopped(node: RabbitMQNode, blocked: list[float], stopping: threading.Event) -> None:
    connection = amqp_connection(node, on_blocked=lambda reason: blocked.append(time.time()))
    channel = connection.channel()
    channel.queue_declare("flood", auto_delete=False)
    body = os.urandom(CHUNK)
    try:
        while not stopping.is_set():
            if blocked:  # the node reads nothing more from this connection: hold it open, write nothing
                stopping.wait(0.1)
                continue
            channel.basic_publish(amqp.Message(body), routing_key="flood")
            with contextlib.suppress(TimeoutError):
                connection.drain_events(timeout=PAUSE)  # reads connection.blocked when it comes
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def test_warn_then_critical_before_the_alarm_blocks_the_publisher(
    node_with_monitor: RabbitMQNode, tmp_path: Path
) -> None:
    node = node_with_monitor
    used = wait_for(lambda: take_rabbit_sample(monitor_api(node)).nodes[0].mem_used)  # 0 until first collected
    node.set_watermark(int(used / 0.70))
    log = tmp_path / "scenario.log"
    loop = start_celery_monitor(log, "--interval", "0.3", *rabbit_args(node))
    blocked: list[float] = []
    stopping = threading.Event()
    producer = threading.Thread(target=_publish_until_stopped, args=(node, blocked, stopping), daemon=True)
    try:
        wait_for(lambda: read_events(log))
        producer.start()
        wait_for(lambda: blocked, timeout=180)
        states = lambda: {c["state"] for c in node.api("GET", "/api/connections?columns=name,state")}  # noqa: E731
        wait_for(lambda: {"blocked", "blocking"} & states(), timeout=30)
        wait_for(lambda: any(e.get("memory_alarm") == "true" for e in read_events(log)), timeout=30)
    finally:
        node.set_watermark(None)  # the alarm clears, the node reads the producer again
        stopping.set()
        producer.join(30)
        _, stderr = stop(loop)
        node.api("DELETE", "/api/queues/%2F/flood")
    events = [e for e in read_events(log) if "node" in e]
    assert all("error" not in e for e in events), stderr

    def first(predicate) -> float:  # type: ignore[no-untyped-def]
        return min(_epoch(e) for e in events if predicate(e))

    warned = first(lambda e: e["status"] == "warn")
    critical = first(lambda e: e["status"] == "critical")
    assert warned < critical < blocked[0], (warned, critical, blocked)
    alarm = next(e for e in events if e.get("memory_alarm") == "true")
    assert alarm["status"] == "critical" and "memory alarm: publishers are blocked" in alarm["reason"]
    assert any("80%" in e["reason"] for e in events if e["status"] == "warn")


def _epoch(event: dict) -> float:
    return event["@timestamp"].timestamp()  # the date filter's result, from the line's Time:


@pytest.fixture
def node_with_monitor(rabbitmq_node: RabbitMQNode) -> RabbitMQNode:
    rabbitmq_node.add_monitoring_user(MONITOR_USER)
    return rabbitmq_node
