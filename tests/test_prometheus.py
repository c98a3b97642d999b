"""Prometheus: the alert rules checked and unit-tested by promtool, and a real Prometheus scraping a real monitor."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from redis import Redis
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from pipeline import settings
from pipeline.monitor.celery_judge import judge_celery
from pipeline.monitor.celery_metrics import CELERY, CELERY_VIEW
from pipeline.monitor.celery_redis import CeleryQueueStats
from pipeline.monitor.judge import Thresholds, judge
from pipeline.monitor.metrics import RQ, RQ_VIEW, MetricsState, families
from pipeline.monitor.rabbitmq import NodeStats, RabbitSample
from pipeline.monitor.sample import QueueStats, RedisStats, Sample
from tests import tasks
from tests.support.metrics import MetricsMonitor, RedisServer
from tests.support.prometheus_server import PrometheusServer, binary

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "prometheus" / "alerts.yml"
RULE_TESTS = REPO / "prometheus" / "alerts.test.yml"
JOB = "rq-task-time-monitor"


def _rules() -> list[dict[str, object]]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def _served_names() -> set[str]:
    """Every series name the endpoint serves (counters with ``_total``), RQ's and Celery's on RabbitMQ."""
    thresholds = Thresholds()
    state = MetricsState("m", thresholds)
    sample = Sample(1.0, 0.1, RedisStats(1, 2, "noeviction", 0, 0, False), [QueueStats("q", *[1] * 11)])
    rq = state.source(RQ, "redis://x:6379/0", RQ_VIEW)
    rq.record(sample, judge(sample, None, thresholds))
    rq.record_error("unreachable")
    rabbit = RabbitSample(
        1.0, 0.1, [NodeStats("rabbit@x", True, 1, 2, False, False)], [CeleryQueueStats("q", 1, 1.0, 0, 0)]
    )
    state.source(CELERY, "amqp://x:5672//", CELERY_VIEW).record(rabbit, judge_celery(rabbit, None, thresholds))
    return {family.name + ("_total" if family.kind == "counter" else "") for family in families(state)}


@pytest.mark.prometheus
def test_promtool_checks_the_rules() -> None:
    done = subprocess.run([binary("promtool"), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(_rules())} rules found" in done.stdout


@pytest.mark.prometheus
def test_the_example_scrape_config_is_valid_and_loads_the_rules() -> None:
    config = RULES.parent / "prometheus.yml"
    done = subprocess.run([binary("promtool"), "check", "config", str(config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    loaded = yaml.safe_load(config.read_text())
    assert loaded["rule_files"] == [RULES.name]
    [job] = loaded["scrape_configs"]
    assert job["job_name"] == JOB and job["metrics_path"] == "/metrics"


@pytest.mark.prometheus
def test_promtool_unit_tests_pass() -> None:
    done = subprocess.run(
        [binary("promtool"), "test", "rules", RULE_TESTS.name], capture_output=True, text=True, cwd=RULE_TESTS.parent
    )
    assert done.returncode == 0 and "SUCCESS" in done.stdout, done.stdout + done.stderr


@pytest.mark.unit
def test_every_rule_fires_in_a_unit_test_and_reads_served_metrics() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for case in tests[0]["alert_rule_test"] if not case["exp_alerts"]}
    names = {rule["alert"] for rule in _rules()}
    assert fired == names and quiet == names  # each fires somewhere and stays quiet on a healthy monitor
    served = _served_names() | {"up"}
    for rule in _rules():
        used = set(re.findall(r"\b(task_time_[a-z_]+|up)\b", str(rule["expr"])))
        assert used and used <= served, (rule["alert"], used - served)
        assert rule["labels"]["severity"] in ("warning", "critical")  # type: ignore[index]


@pytest.mark.unit
def test_the_memory_rules_use_the_monitors_thresholds() -> None:
    exprs = {rule["alert"]: str(rule["expr"]) for rule in _rules()}
    assert exprs["TaskTimeBrokerMemoryHigh"].endswith(f">= {settings.MEMORY_WARN.default / 100:g}")
    assert exprs["TaskTimeBrokerMemoryCritical"].endswith(f">= {settings.MEMORY_CRITICAL.default / 100:g}")
    assert f'job="{JOB}"' in exprs["TaskTimeMonitorDown"]


@pytest.mark.redis
@pytest.mark.prometheus
def test_prometheus_scrapes_the_monitor_and_promql_returns_a_waiting_queues_latency(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    Queue("waiting", connection=redis).enqueue(tasks.no_op)  # no worker: it waits, and its latency grows
    enqueued = time.time()
    monitor = MetricsMonitor(monitor_url(redis_server.url), tmp_path / "m.log", "--interval", "1", "--name", "prom")
    server = None
    try:
        monitor.wait_for_sample()
        server = PrometheusServer(JOB, [f"127.0.0.1:{monitor.port}"], [RULES])
        deadline = time.monotonic() + 60
        query = 'task_time_queue_latency_seconds{queue="waiting"}'
        while not (found := server.query(query)) or float(found[0]["value"][1]) < 3:
            assert time.monotonic() < deadline, f"Prometheus never returned a latency of 3 s or more: {found}"
            time.sleep(0.5)
        [series] = found
        latency, elapsed = float(series["value"][1]), time.time() - enqueued
        assert 3 <= latency <= elapsed, (latency, elapsed)
        later = server.query(f"max_over_time({query}[1m])")
        assert float(later[0]["value"][1]) >= latency  # the series grows as the job keeps waiting
        labels = series["metric"]
        assert labels["system"] == "rq" and labels["broker"] == f"redis://127.0.0.1:{redis_server.port}/0"
        assert labels["job"] == JOB and labels["instance"] == f"127.0.0.1:{monitor.port}"
        # The rules load in the real server and fire on the real monitor: one job waiting, no worker.
        groups = server.api("rules")["groups"]
        assert sum(len(group["rules"]) for group in groups) == len(_rules())
        assert all(rule["health"] == "ok" for group in groups for rule in group["rules"]), groups
        while not server.query('ALERTS{alertname="TaskTimeQueueNoWorker",alertstate="firing",queue="waiting"}'):
            assert time.monotonic() < deadline, "the no-worker alert never fired"
            time.sleep(0.5)
        assert server.query('task_time_queue_depth{queue="waiting"}')[0]["value"][1] == "1"
    finally:
        if server is not None:
            server.stop()
        monitor.stop()
