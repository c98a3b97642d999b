"""How the metrics endpoint serves a Celery sample: the views of Celery on Redis and on RabbitMQ.

The series RQ has keep their names (``metrics``: latency, its limit, depth, status, the
broker's memory), so one rule, one query and one dashboard serve both systems; the label
``system="celery"`` tells them apart. What only Celery's brokers know is added: consumers
and unacknowledged messages per queue (RabbitMQ), the global ``unacked`` count (Redis),
each RabbitMQ node's alarms (label ``node``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlsplit

from pipeline.lines.queue import STATUSES

from .celery_judge import CeleryJudgement
from .celery_redis import CeleryRedisSample
from .judge import Thresholds, worst
from .metrics import (
    BROKER_STATUS,
    GAUGE,
    MEMORY_BYTES,
    MEMORY_LIMIT,
    MEMORY_RATIO,
    Family,
    Snapshot,
    Spec,
    View,
    add_rows,
    queue_families,
    redis_rows,
    status_value,
)
from .rabbitmq import RabbitSample, vhost_of

CELERY = "celery"
UNACKED = Spec("broker_unacked_messages", GAUGE, "messages workers took and have not acknowledged, all queues (Redis)")
MEMORY_ALARM = Spec("broker_memory_alarm", GAUGE, "1 while the RabbitMQ node's memory alarm blocks publishers")
DISK_ALARM = Spec("broker_disk_alarm", GAUGE, "1 while the RabbitMQ node's disk alarm blocks publishers")
CONSUMERS = Spec("queue_consumers", GAUGE, "consumers of the queue (RabbitMQ)")
RESERVED = Spec("queue_reserved_messages", GAUGE, "messages delivered and not acknowledged (RabbitMQ)")


def amqp_label(broker_url: str) -> str:
    """The ``broker`` label of a RabbitMQ broker: ``amqp://host:port/vhost`` (kombu's ``//`` for the
    vhost ``/``; others URL-quoted), never the credentials."""
    parts = urlsplit(broker_url)
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    vhost = vhost_of(broker_url)
    return f"{parts.scheme}://{host}:{parts.port or 5672}/{vhost if vhost == '/' else quote(vhost, safe='')}"


def _families(base: dict[str, str], snapshot: Snapshot, thresholds: Thresholds) -> list[Family]:
    sample: CeleryRedisSample | RabbitSample = snapshot.sample
    judgement: CeleryJudgement = snapshot.judgement
    if isinstance(sample, CeleryRedisSample):
        status = status_value(judgement.broker["redis"].status)
        found = add_rows(base, [*redis_rows(sample.redis), (UNACKED, sample.unacked), (BROKER_STATUS, status)])
    else:
        found = []
        for node in sample.nodes:
            rows = [
                (MEMORY_RATIO, node.memory_used_pct / 100.0),
                (MEMORY_BYTES, node.mem_used),
                (MEMORY_LIMIT, node.mem_limit),
                (MEMORY_ALARM, int(node.mem_alarm)),
                (DISK_ALARM, int(node.disk_free_alarm)),
                (BROKER_STATUS, status_value(judgement.broker[f"node {node.name}"].status)),
            ]
            found += add_rows({**base, "node": node.name}, rows)
    statuses = {name: verdict.status for name, verdict in judgement.queues.items()}
    found += queue_families(base, thresholds, [(q.name, q.latency, q.depth) for q in sample.queues], statuses)
    consumers, reserved = CONSUMERS.family(), RESERVED.family()
    for queue in sample.queues:
        labels = {**base, "queue": queue.name}
        if queue.consumers is not None:
            consumers.add(labels, queue.consumers)
        if queue.reserved is not None:
            reserved.add(labels, queue.reserved)
    return [*found, consumers, reserved]


def _status(snapshot: Snapshot) -> str:
    verdicts = snapshot.judgement.broker.values()
    return worst([verdict.status for verdict in verdicts]) if verdicts else STATUSES[0]


def _queues(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    return {
        queue.name: {
            "latency": queue.latency,
            "depth": queue.depth,
            "reserved": queue.reserved,
            "consumers": queue.consumers,
            "status": snapshot.judgement.queues[queue.name].status,
        }
        for queue in snapshot.sample.queues
    }


CELERY_VIEW = View(_families, _status, _queues)
