"""The KEDA examples in deploy/keda/: KEDA's ScaledObject schema, and what their triggers read.

Schema: ``cloudcoil-models-keda`` (PyPI), pydantic models generated from KEDA's CRDs
(``keda.sh/v1alpha1``): required fields and types, e.g. trigger metadata values must be
strings. No cluster and no KEDA run here: that the scalers do what the comments say is
static (the queries and paths are checked against what the monitor serves).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

from pipeline import settings
from pipeline.monitor.celery_judge import judge_celery
from pipeline.monitor.celery_metrics import CELERY, CELERY_VIEW
from pipeline.monitor.celery_redis import CeleryQueueStats, CeleryRedisSample
from pipeline.monitor.judge import Thresholds, judge
from pipeline.monitor.metrics import RQ, RQ_VIEW, MetricsState, families, queues_document
from pipeline.monitor.sample import QueueStats, RedisStats, Sample

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
FILES = sorted((REPO / "deploy" / "keda").glob("*.yaml"))


def _objects() -> list[tuple[str, dict[str, Any]]]:
    return [(path.name, doc) for path in FILES for doc in yaml.safe_load_all(path.read_text()) if doc]


def _triggers() -> list[tuple[str, dict[str, Any]]]:
    return [(name, trigger) for name, doc in _objects() for trigger in doc["spec"]["triggers"]]


def _unknown_keys(given: Any, known: Any, path: str = "") -> list[str]:
    """Keys of ``given`` the model dropped (pydantic ignores unknown fields): typos such as ``treshold``."""
    if isinstance(given, dict) and isinstance(known, dict):
        found = [f"{path}.{key}" for key in given if key not in known]
        return found + [item for key in given if key in known for item in _unknown_keys(given[key], known[key], key)]
    if isinstance(given, list) and isinstance(known, list):
        return [item for a, b in zip(given, known, strict=True) for item in _unknown_keys(a, b, path)]
    return []


def test_there_are_examples_for_rq_and_celery_workers() -> None:
    assert {path.name for path in FILES} == {"rq-worker.yaml", "celery-worker.yaml"}
    assert len(_objects()) == 3


@pytest.mark.parametrize("name,doc", _objects(), ids=lambda value: value if isinstance(value, str) else "")
def test_each_object_is_a_valid_scaled_object(name: str, doc: dict[str, Any]) -> None:
    model = ScaledObject.model_validate(doc)
    assert model.api_version == "keda.sh/v1alpha1" and model.kind == "ScaledObject"
    dumped = model.model_dump(by_alias=True, exclude_unset=True, mode="json")
    assert _unknown_keys(doc, dumped) == [], name
    assert model.spec.scale_target_ref.name
    assert 1 <= model.spec.min_replica_count < model.spec.max_replica_count


def test_a_metadata_value_that_is_not_a_string_is_refused_as_kubernetes_would() -> None:
    [(_, doc), *_] = _objects()
    doc["spec"]["triggers"][0]["metadata"]["threshold"] = 30
    with pytest.raises(ValueError, match="threshold"):
        ScaledObject.model_validate(doc)


def test_latency_triggers_use_metric_type_value() -> None:
    latency = [trigger for _, trigger in _triggers() if trigger["type"] in ("prometheus", "metrics-api")]
    assert len(latency) == 3
    assert all(trigger["metricType"] == "Value" for trigger in latency)


def _state(queue: str, latency: float) -> MetricsState:
    """A monitor's state with RQ's and Celery's sources, each with one queue named ``queue``."""
    state = MetricsState("m", Thresholds())
    sample = Sample(1.0, 0.1, RedisStats(1, 2, "noeviction", 0, 0, False), [QueueStats(queue, 3, latency, *[0] * 9)])
    state.source(RQ, "redis://x:6379/0", RQ_VIEW).record(sample, judge(sample, None, Thresholds()))
    celery = CeleryRedisSample(1.0, 0.1, RedisStats(1, 2, "noeviction", 0, 0, False), 0, [])
    celery.queues.append(CeleryQueueStats(queue, 3, latency, None, None))
    state.source(CELERY, "redis://x:6379/1", CELERY_VIEW).record(celery, judge_celery(celery, None, Thresholds()))
    return state


def _served_series() -> set[tuple[str, str]]:
    """(metric name, system) of every series served."""
    families_ = families(_state("q", 1.0))
    return {(family.name, labels["system"]) for family in families_ for labels, _ in family.samples}


def test_prometheus_queries_read_the_latency_the_monitor_serves() -> None:
    served = _served_series()
    for name, trigger in _triggers():
        if trigger["type"] != "prometheus":
            continue
        query = trigger["metadata"]["query"]
        metric = re.match(r"max\((task_time_[a-z_]+)\{system=\"(rq|celery)\", queue=\"[^\"]+\"\}\)$", query)
        assert metric and metric[1] == "task_time_queue_latency_seconds", (name, query)
        assert (metric[1], metric[2]) in served, (name, query)
        threshold = float(trigger["metadata"]["threshold"])
        assert 0 < float(trigger["metadata"]["activationThreshold"]) < threshold
        assert threshold <= float(settings.MAX_LATENCY.default.split("=")[1])  # scale before the monitor warns


def gjson(document: Any, path: str) -> Any:
    """The value at a GJSON path of plain keys (``a.b.c``, ``\\.`` escaping a dot), as KEDA reads it."""
    for key in re.split(r"(?<!\\)\.", path):
        document = document[key.replace("\\.", ".")]
    return document


def test_the_metrics_api_trigger_reads_a_latency_from_the_queues_document() -> None:
    [(name, trigger)] = [(name, trigger) for name, trigger in _triggers() if trigger["type"] == "metrics-api"]
    metadata = trigger["metadata"]
    assert metadata["url"].endswith(":9187/queues") and metadata["format"] == "json"
    system, _, queue, _ = metadata["valueLocation"].split(".")
    assert system == "rq" and name == "rq-worker.yaml"
    assert gjson(queues_document(_state(queue, 12.5)), metadata["valueLocation"]) == 12.5
    assert gjson({"rq": {"queues": {"my.queue": {"latency": 1}}}}, r"rq.queues.my\.queue.latency") == 1


def test_the_celery_example_scales_on_the_celery_series_with_a_fallback() -> None:
    [celery] = [doc for name, doc in _objects() if name == "celery-worker.yaml"]
    [trigger] = celery["spec"]["triggers"]
    assert trigger["type"] == "prometheus" and 'system="celery"' in trigger["metadata"]["query"]
    assert trigger["metadata"]["ignoreNullValues"] == "false" and celery["spec"]["fallback"]["replicas"] >= 1
