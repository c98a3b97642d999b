"""The seed's scenario on RabbitMQ: a producer publishes with no consumer until the node's memory
alarm blocks it; the monitor's loop says warn, then critical, before the publisher is blocked.

The node's ``vm_memory_high_watermark.absolute`` is set at run time just above what it uses
(used = 65 % of the limit, once the API's figure has settled); the producer is py-amqp,
which advertises ``connection.blocked`` and calls ``on_blocked`` when the node blocks it.
The producer publishes about 1.5 MB/s until the monitor says critical, then as fast as it
can: near the watermark the node pages messages out (from 99 % here), and a slow producer
could be held just under the alarm by that paging.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

import pytest

from harness.rabbitmq import RabbitMQNode
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

pytestmark = [pytest.mark.rabbitmq, pytest.mark.celery, pytest.mark.jvm]
CHUNK = 64 * 1024
# About 1.5 MB/s: the API's node memory figure is refreshed every 5 s, so memory must take
# several refreshes to climb from 80 % to 90 % of the limit for a sample to land between.
PAUSE = 0.04


def _publish_until_stopped(
    node: RabbitMQNode, blocked: list[float], stopping: threading.Event, fast: threading.Event
) -> None:
    import amqp  # the celery extra's py-amqp, imported when the test runs

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
                connection.drain_events(timeout=0.001 if fast.is_set() else PAUSE)  # reads connection.blocked
    finally:
        with contextlib.suppress(Exception):
            connection.close()


def test_warn_then_critical_before_the_alarm_blocks_the_publisher(
    node_with_monitor: RabbitMQNode, tmp_path: Path
) -> None:
    node = node_with_monitor
    node.set_watermark(int(_settled_memory(node) / 0.65))
    log = tmp_path / "scenario.log"
    loop = start_celery_monitor(log, "--interval", "0.3", *rabbit_args(node))
    blocked: list[float] = []
    stopping, fast = threading.Event(), threading.Event()
    producer = threading.Thread(target=_publish_until_stopped, args=(node, blocked, stopping, fast), daemon=True)
    try:
        first = wait_for(lambda: [e for e in read_events(log) if "node" in e and e["maxmemory"] < 10**10])
        assert first[0]["status"] == "ok", first[0]  # below 80 % before the producer starts
        producer.start()
        wait_for(lambda: any(e["status"] == "critical" and "node" in e for e in read_events(log)), timeout=180)
        fast.set()
        assert wait_for(lambda: blocked, timeout=120), "the producer was never blocked"
        time.sleep(6)  # one more refresh of the API's node figures
    finally:
        node.set_watermark(None)  # the alarm clears, the node reads the producer again
        stopping.set()
        if producer.is_alive():
            producer.join(30)
        _, stderr = stop(loop)
        node.api("DELETE", "/api/queues/%2F/flood")
    events = [e for e in read_events(log) if "node" in e and e["maxmemory"] < 10**10]  # after the watermark
    assert all("error" not in e for e in events), stderr

    def first(predicate) -> float:  # type: ignore[no-untyped-def]
        return min(_epoch(e) for e in events if predicate(e))

    warned = first(lambda e: e["status"] == "warn")
    critical = first(lambda e: e["status"] == "critical")
    assert warned < critical < blocked[0], (warned, critical, blocked)
    # The alarm can clear within seconds (the node pages messages out below the watermark) and
    # the API refreshes its figures every 5 s: a sample may or may not see it.
    for alarm in (e for e in events if e.get("memory_alarm") == "true"):
        assert alarm["status"] == "critical" and "memory alarm: publishers are blocked" in alarm["reason"]
    assert any("80%" in e["reason"] for e in events if e["status"] == "warn")


def _settled_memory(node: RabbitMQNode) -> int:
    """The node's memory as the API shows it, once two of its refreshes (about 5 s apart) agree within 5 %."""
    readings: list[int] = []
    while len(readings) < 2 or abs(readings[-1] - readings[-2]) > 0.05 * readings[-1]:
        assert len(readings) < 12, readings
        if readings:
            time.sleep(5.5)
        readings.append(wait_for(lambda: take_rabbit_sample(monitor_api(node)).nodes[0].mem_used))
    return max(readings[-2:])


def _epoch(event: dict) -> float:
    return event["@timestamp"].timestamp()  # the date filter's result, from the line's Time:


@pytest.fixture
def node_with_monitor(rabbitmq_node: RabbitMQNode) -> RabbitMQNode:
    rabbitmq_node.add_monitoring_user(MONITOR_USER)
    return rabbitmq_node
