"""The metrics endpoint's content from a known sample: families, the text format, ``/queues``, options."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.monitor import options
from pipeline.monitor.judge import Thresholds, judge
from pipeline.monitor.metrics import RQ, RQ_VIEW, MetricsState, SourceState, broker_label, families, queues_document
from pipeline.monitor.sample import QueueStats, RedisStats, Sample
from pipeline.monitor.serve import application

pytestmark = [pytest.mark.unit]

BROKER = broker_label("10.0.0.5:6379/2")
BASE = {"system": "rq", "broker": BROKER}


def _sample(taken_at: float = 1000.0) -> Sample:
    redis = RedisStats(900, 1000, "noeviction", 4, 2, False)
    queues = [
        QueueStats("default", 12, 40.5, 0, 1, 1, 3, 0, 0, 0, 0, 0),  # no worker: critical
        QueueStats("high", 0, 0.0, 0, 0, 0, 0, 0, 0, 0, 2, 1),
        QueueStats("lost", 3, None, 3, 0, 0, 0, 0, 0, 0, 1, 1),
    ]
    return Sample(taken_at=taken_at, duration=0.25, redis=redis, queues=queues)


def _state(recorded: bool = True) -> MetricsState:
    thresholds = Thresholds(80, 90, {"default": 30.0, "high": 5.0})
    state = MetricsState("mon-1", thresholds)
    source = state.source(RQ, BROKER, RQ_VIEW)
    if recorded:
        sample = _sample()
        source.record(sample, judge(sample, None, thresholds))
    return state


def _rq(state: MetricsState) -> SourceState:
    [source] = state.sources
    return source


def _scrape(state: MetricsState, path: str = "/metrics") -> tuple[str, dict[str, str], bytes]:
    app = application(state)
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answer["status"], answer["headers"] = status, dict(headers)

    body = b"".join(app({"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}, start_response))
    return answer["status"], answer["headers"], body


def _values(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for metric in text_string_to_metric_families(text):
        for sample in metric.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _key(name: str, **labels: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    return (name, tuple(sorted({**BASE, **labels}.items())))


def test_the_scrape_serves_every_figure_of_the_last_sample() -> None:
    status, headers, body = _scrape(_state())
    assert status.startswith("200") and headers["Content-Type"].startswith("text/plain")
    values = _values(body.decode())
    assert values[_key("task_time_broker_memory_used_ratio")] == pytest.approx(0.9)
    assert values[_key("task_time_broker_memory_used_bytes")] == 900
    assert values[_key("task_time_broker_maxmemory_bytes")] == 1000
    assert values[_key("task_time_broker_evicted_keys_total")] == 4
    assert values[_key("task_time_broker_oom_rejections_total")] == 2
    assert values[_key("task_time_broker_status")] == 2  # 90 % of maxmemory
    assert values[_key("task_time_broker_up")] == 1
    assert values[_key("task_time_queue_latency_seconds", queue="default")] == 40.5
    assert values[_key("task_time_queue_latency_limit_seconds", queue="high")] == 5.0
    assert values[_key("task_time_queue_depth", queue="default")] == 12
    assert values[_key("task_time_queue_workers", queue="high", state="busy")] == 1
    assert values[_key("task_time_queue_workers", queue="high", state="idle")] == 1
    assert values[_key("task_time_queue_abandoned_jobs", queue="default")] == 1
    assert values[_key("task_time_queue_failed_jobs", queue="default")] == 3
    assert values[_key("task_time_queue_status", queue="default")] == 2
    assert values[_key("task_time_queue_status", queue="high")] == 0
    assert values[_key("task_time_monitor_sample_duration_seconds")] == 0.25
    assert values[_key("task_time_monitor_last_sample_timestamp_seconds")] == 1000.0
    assert values[_key("task_time_monitor_samples_total")] == 1
    # An unknown latency is no series at all, not a zero.
    assert _key("task_time_queue_latency_seconds", queue="lost") not in values


def test_counters_end_in_total_and_every_family_has_help_and_units() -> None:
    _, _, body = _scrape(_state())
    for metric in text_string_to_metric_families(body.decode()):
        assert metric.name.startswith("task_time_") and metric.documentation
        if metric.type == "counter":
            assert all(sample.name.endswith("_total") for sample in metric.samples if sample.name != metric.name)
        for sample in metric.samples:
            assert sample.labels["system"] == "rq" and sample.labels["broker"] == BROKER


def test_failed_samples_are_counted_and_the_last_good_one_stays() -> None:
    state = _state()
    _rq(state).record_error("unreachable")
    _rq(state).record_error("unreachable")
    values = _values(_scrape(state)[2].decode())
    assert values[_key("task_time_monitor_sample_errors_total", error="unreachable")] == 2
    assert values[_key("task_time_broker_up")] == 0
    assert values[_key("task_time_queue_depth", queue="default")] == 12


def test_before_the_first_sample_only_the_monitors_own_metrics() -> None:
    state = _state(recorded=False)
    names = {family.name for family in families(state) if family.samples}
    assert names == {"task_time_monitor_samples", "task_time_broker_up"}
    status, _, body = _scrape(state, "/queues")
    assert status.startswith("503") and json.loads(body) == {"error": "no sample yet"}
    assert _scrape(state, "/other")[0].startswith("404")


def test_the_queues_document_for_kedas_metrics_api_scaler() -> None:
    status, headers, body = _scrape(_state(), "/queues")
    assert status.startswith("200") and headers["Content-Type"] == "application/json"
    whole = json.loads(body)
    assert set(whole) == {"monitor", "rq"} and whole["monitor"] == "mon-1"
    document = whole["rq"]
    assert whole == queues_document(_state(), now=document["taken_at"] + document["age"])
    assert document["broker"] == BROKER and document["up"] is True and document["status"] == "critical"
    assert document["max_latency"] == 40.5 and document["total_depth"] == 15
    assert document["queues"]["default"] == {
        "latency": 40.5,
        "depth": 12,
        "workers": 0,
        "busy": 0,
        "idle": 0,
        "abandoned": 1,
        "failed": 3,
        "status": "critical",
    }
    assert document["queues"]["lost"]["latency"] is None


def test_the_metrics_options_and_their_variables() -> None:
    config = options.parse_args(["--metrics-port", "9187"], {})
    assert (config.metrics_port, config.metrics_host) == (9187, "127.0.0.1")
    config = options.parse_args(
        [], {"TASK_TIME_MONITOR_METRICS_PORT": "9100", "TASK_TIME_MONITOR_METRICS_HOST": "0.0.0.0"}
    )
    assert (config.metrics_port, config.metrics_host) == (9100, "0.0.0.0")
    assert options.parse_args([], {}).metrics_port is None
    for bad in (["--metrics-port", "0"], ["--metrics-port", "70000"], ["--metrics-port", "x"]):
        with pytest.raises(SystemExit) as stopped:
            options.parse_args(bad, {})
        assert stopped.value.code == 2
