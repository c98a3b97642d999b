"""The metrics endpoint with Celery sources: the series, labels and ``/queues`` objects of Celery on Redis
and on RabbitMQ beside RQ's, and the docs listing every series and key served."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline.monitor.celery_judge import judge_celery
from pipeline.monitor.celery_metrics import CELERY, CELERY_VIEW, amqp_label
from pipeline.monitor.celery_redis import CeleryQueueStats, CeleryRedisSample
from pipeline.monitor.judge import Thresholds, judge
from pipeline.monitor.metrics import RQ, RQ_VIEW, MetricsState, broker_label, families, queues_document
from pipeline.monitor.rabbitmq import NodeStats, RabbitSample
from pipeline.monitor.sample import QueueStats, RedisStats, Sample

pytestmark = [pytest.mark.unit]

THRESHOLDS = Thresholds(80, 90, {"celery": 30.0})
RQ_BROKER = broker_label("q:6379/0")
REDIS_BROKER = broker_label("r:6379/1")
AMQP_BROKER = "amqp://mq:5672//"


def _redis_sample() -> CeleryRedisSample:
    queues = [
        CeleryQueueStats("celery", 7, 45.0, None, None),
        CeleryQueueStats("bare", 2, None, None, None, "no stamp"),
    ]
    return CeleryRedisSample(100.0, 0.01, RedisStats(850, 1000, "noeviction", 1, 0, False), 3, queues)


def _rabbit_sample() -> RabbitSample:
    nodes = [NodeStats("rabbit@a", True, 500, 1000, False, False), NodeStats("rabbit@b", True, 950, 1000, True, False)]
    queues = [CeleryQueueStats("celery", 4, 12.0, 2, 1), CeleryQueueStats("idle", 3, 1.0, 0, 0)]
    return RabbitSample(200.0, 0.02, nodes, queues, requests=3)


def _state(*sources: str) -> MetricsState:
    """A state with an RQ source and the Celery sources named (``redis``, ``rabbitmq``), each sampled once."""
    state = MetricsState("mon", THRESHOLDS)
    rq_sample = Sample(50.0, 0.1, RedisStats(1, 2, "noeviction", 0, 0, False), [QueueStats("celery", *[1] * 11)])
    state.source(RQ, RQ_BROKER, RQ_VIEW).record(rq_sample, judge(rq_sample, None, THRESHOLDS))
    for broker in sources:
        sample = _redis_sample() if broker == "redis" else _rabbit_sample()
        label = REDIS_BROKER if broker == "redis" else AMQP_BROKER
        state.source(CELERY, label, CELERY_VIEW).record(sample, judge_celery(sample, None, THRESHOLDS))
    return state


def _series(state: MetricsState) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (family.name, frozenset(labels.items())): value
        for family in families(state)
        for labels, value in family.samples
    }


def _at(series: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return series[("task_time_" + name, frozenset(labels.items()))]


def test_celery_on_redis_beside_rq_a_queue_of_the_same_name_is_two_series() -> None:
    series = _series(_state("redis"))
    rq, celery = {"system": "rq", "broker": RQ_BROKER}, {"system": "celery", "broker": REDIS_BROKER}
    assert _at(series, "queue_depth", **rq, queue="celery") == 1
    assert _at(series, "queue_depth", **celery, queue="celery") == 7
    assert _at(series, "queue_latency_seconds", **celery, queue="celery") == 45.0
    assert _at(series, "queue_latency_limit_seconds", **celery, queue="celery") == 30.0
    assert _at(series, "queue_status", **celery, queue="celery") == 1  # over its limit: warn
    assert ("task_time_queue_latency_seconds", frozenset({**celery, "queue": "bare"}.items())) not in series
    assert _at(series, "broker_memory_used_ratio", **celery) == pytest.approx(0.85)
    assert _at(series, "broker_maxmemory_bytes", **celery) == 1000
    assert _at(series, "broker_evicted_keys", **celery) == 1
    assert _at(series, "broker_unacked_messages", **celery) == 3
    assert _at(series, "broker_status", **celery) == 1  # 85 % of maxmemory: warn
    assert _at(series, "broker_up", **celery) == 1 and _at(series, "monitor_samples", **celery) == 1
    # Redis cannot tell consumers or reserved messages per queue: no series, never a made-up zero.
    names = {name for name, labels in series if ("system", "celery") in labels}
    assert not names & {"task_time_queue_consumers", "task_time_queue_reserved_messages"}
    # RQ's own series stay RQ's.
    assert not {name for name, labels in series if ("system", "rq") not in labels} & {
        "task_time_queue_workers",
        "task_time_broker_suspended",
    }


def test_celery_on_rabbitmq_serves_each_node_and_each_queues_consumers() -> None:
    series = _series(_state("rabbitmq"))
    base = {"system": "celery", "broker": AMQP_BROKER}
    assert _at(series, "broker_memory_used_ratio", **base, node="rabbit@b") == pytest.approx(0.95)
    assert _at(series, "broker_memory_alarm", **base, node="rabbit@b") == 1
    assert _at(series, "broker_memory_alarm", **base, node="rabbit@a") == 0
    assert _at(series, "broker_status", **base, node="rabbit@b") == 2
    assert _at(series, "broker_status", **base, node="rabbit@a") == 0
    assert _at(series, "queue_consumers", **base, queue="idle") == 0
    assert _at(series, "queue_reserved_messages", **base, queue="celery") == 2
    assert _at(series, "queue_status", **base, queue="idle") == 2  # messages and no consumer


def test_the_queues_document_has_one_object_per_system() -> None:
    document = queues_document(_state("rabbitmq"), now=210.0)
    assert document is not None and set(document) == {"monitor", "rq", "celery"}
    celery = document["celery"]
    assert celery["broker"] == AMQP_BROKER and celery["status"] == "critical"  # type: ignore[index]
    assert (celery["age"], celery["max_latency"], celery["total_depth"]) == (10.0, 12.0, 7)  # type: ignore[index]
    assert celery["queues"]["celery"] == {  # type: ignore[index]
        "latency": 12.0,
        "depth": 4,
        "reserved": 2,
        "consumers": 1,
        "status": "ok",
    }
    redis = queues_document(_state("redis"))["celery"]["queues"]  # type: ignore[index]
    assert redis["bare"]["latency"] is None and redis["bare"]["reserved"] is None


def test_a_celery_source_before_its_first_sample_is_absent_from_the_document_but_counted() -> None:
    state = MetricsState("mon", THRESHOLDS)
    celery = state.source(CELERY, REDIS_BROKER, CELERY_VIEW)
    assert queues_document(state) is None
    celery.record_error("unreachable")
    series = _series(state)
    assert _at(series, "broker_up", system="celery", broker=REDIS_BROKER) == 0
    assert _at(series, "monitor_sample_errors", system="celery", broker=REDIS_BROKER, error="unreachable") == 1


@pytest.mark.parametrize(
    ("url", "label"),
    [
        ("amqp://user:secret@mq:5672//", "amqp://mq:5672//"),
        ("amqp://user:secret@mq/prod", "amqp://mq:5672/prod"),
        ("amqps://u:p@[::1]:5671/v", "amqps://[::1]:5671/v"),
        ("amqp://u:p@mq:5672/%2F", "amqp://mq:5672//"),
        ("amqp://u:p@mq:5672/a%2Fb", "amqp://mq:5672/a%2Fb"),
    ],
)
def test_the_amqp_label_never_carries_the_credentials(url: str, label: str) -> None:
    assert amqp_label(url) == label


def _documented(heading: str) -> str:
    """The section of docs/autoscaling.md under ``heading``."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "autoscaling.md").read_text()
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


def test_the_docs_list_every_metric_served_with_its_type() -> None:
    state = _state("redis", "rabbitmq")
    state.sources[0].record_error("auth")
    served = {
        family.name + ("_total" if family.kind == "counter" else ""): family.kind
        for family in families(state)
        if family.samples
    }
    rows = re.findall(r"^\| `(task_time_[a-z_]+)` \| (gauge|counter) \|", _documented("Metrics"), re.MULTILINE)
    assert dict(rows) == served and len(rows) == len(served)


def test_the_docs_name_every_key_of_the_queues_document() -> None:
    section = _documented("/queues")
    for sources in (("redis",), ("rabbitmq",)):
        document = queues_document(_state(*sources))
        assert document is not None
        for system in ("rq", "celery"):
            part = document[system]
            for key in part:  # type: ignore[attr-defined]
                assert f"`{system}.{key}`" in section or f"`<system>.{key}`" in section, (system, key)
            for key in next(iter(part["queues"].values())):  # type: ignore[index]
                assert f"`<system>.queues.<name>.{key}`" in section or f"`.{key}`" in section, key
