"""The queue-monitor side of Kibana: data view, "Queues in trouble", the Queue health dashboard and the rules.

Kibana does not run in the tests. The saved search and every Lens panel of the dashboard
run as the requests Kibana sends for them, and each rule's condition as the query its rule
type runs, on real monitor lines (RQ's, and Celery's RabbitMQ node lines; written by
``pipeline.lines.queue``, through the queue-monitor pipeline's stages) in the real cluster.
The alerting API requests are checked against a recording server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from harness import kibana_objects
from pipeline.bootstrap.alerting import load_alerting, rule_request
from pipeline.lines import queue as monitor_line
from pipeline.lines.clock import LineClock, format_line
from pipeline.monitor.judge import Thresholds
from tests.conftest import ElasticsearchTarget, bootstrap
from tests.support import logstash
from tests.support.monitor import QUEUE_VALUES
from tests.support.recording_kibana import kibana
from tests.support.recording_server import Reply, Request, reply_json

REPO = Path(__file__).resolve().parents[1]
OBJECTS = kibana_objects.objects()
ALERTING = {(a.kind, a.id): a for a in load_alerting(REPO)}
CONFIG = REPO / "logstash" / "pipeline" / "queue-monitor.conf"

REDIS_VALUES = {
    "redis": "127.0.0.1:6379/0",
    "used_memory": 1000,
    "maxmemory": 10000,
    "memory_used_pct": 10.0,
    "maxmemory_policy": "noeviction",
    "evicted_keys": 0,
    "oom_rejections": 0,
    "suspended": False,
    "sample_time": 0.001,
}
NODE_VALUES = {
    "node": "rabbit@mq1",
    "used_memory": 40_000_000,
    "maxmemory": 400_000_000,
    "memory_used_pct": 10.0,
    "memory_alarm": False,
    "disk_alarm": False,
    "sample_time": 0.004,
}
RABBITMQ = ("celery", "rabbitmq")  # the origin Celery's RabbitMQ lines carry


def monitor_document(
    status: str,
    kind: str,
    values: dict[str, Any],
    reason: str = "",
    ago: float = 0,
    origin: tuple[str, str] | None = None,
) -> tuple:
    """(index, document) for one monitor line, as the queue-monitor pipeline makes it."""
    fields = monitor_line.format_fields("test.1", status, kind, values, reason, origin)
    text = format_line(time.time() - ago, fields, LineClock())
    event = logstash.Pipeline(CONFIG, environ={}).run(text)
    assert "tags" not in event, text
    return event["@metadata"]["_index"], logstash.document(event)


def index(client: Elasticsearch, documents: list[tuple]) -> None:
    operations = []
    for name, document in documents:
        operations += [{"create": {"_index": name}}, document]
    response = client.bulk(operations=operations, refresh="wait_for")
    assert not response["errors"], response


def queue(name: str, status: str, ago: float = 0, **values: Any) -> tuple:
    return monitor_document(status, "queue", {**QUEUE_VALUES, "queue": name, **values}, f"{name} {status}", ago)


def redis_line(status: str, ago: float = 0, **values: Any) -> tuple:
    return monitor_document(status, "redis", {**REDIS_VALUES, **values}, "", ago)


def node_line(status: str, ago: float = 0, **values: Any) -> tuple:
    """A RabbitMQ node's line, as Celery's monitor writes it."""
    return monitor_document(status, "node", {**NODE_VALUES, **values}, "", ago, RABBITMQ)


def node_error_line(node: str, ago: float = 0) -> tuple:
    """The line of a RabbitMQ node the monitor could not sample: a node, no memory."""
    values = {"node": node, "error": "unreachable"}
    return monitor_document("critical", "node-error", values, "Connection refused", ago, RABBITMQ)


# ------------------------------------------------------------------------- static


# Each broker's memory panel, the rule on the same figure, and the field both split it by.
MEMORY_PANELS = [
    ("queue-monitor-memory", "redis-memory-high", "redis"),
    ("queue-monitor-node-memory", "rabbitmq-memory-high", "node"),
]


@pytest.mark.unit
@pytest.mark.parametrize(("lens_id", "rule_id", "split"), MEMORY_PANELS, ids=[rule for _, rule, _ in MEMORY_PANELS])
def test_memory_panel_draws_the_monitor_s_own_thresholds(lens_id: str, rule_id: str, split: str) -> None:
    lens = OBJECTS[("lens", lens_id)]
    layers = lens["attributes"]["state"]["datasourceStates"]["formBased"]
    static = [c for layer in layers["layers"].values() for c in layer["columns"].values() if c.get("isStaticValue")]
    defaults = Thresholds()
    assert sorted(float(c["params"]["value"]) for c in static) == [defaults.memory_warn, defaults.memory_critical]
    columns = kibana_objects.lens_layer(lens)["columns"]
    assert {c["sourceField"] for c in columns.values() if c["operationType"] == "max"} == {"memory_used_pct"}
    assert {c["sourceField"] for c in columns.values() if c["operationType"] == "terms"} == {split}
    rule = ALERTING[("rule", rule_id)].body["params"]
    assert (rule["aggField"], rule["thresholdComparator"], rule["threshold"], rule["termField"]) == (
        "memory_used_pct",
        ">=",
        [defaults.memory_warn],
        split,
    )
    dashboard = OBJECTS[("dashboard", "queue-health")]
    assert ("lens", lens_id) in {(ref["type"], ref["id"]) for ref in dashboard["references"]}


@pytest.mark.unit
def test_a_queue_in_trouble_is_one_click_from_its_task_ranking() -> None:
    dashboard = OBJECTS[("dashboard", "queue-health")]
    references = {ref["name"]: ref for ref in dashboard["references"]}
    drilldowns = 0
    for panel in dashboard["attributes"]["panelsJSON"]:
        events = panel["embeddableConfig"]["enhancements"].get("dynamicActions", {}).get("events", [])
        for event in events:
            drilldowns += 1
            action = event["action"]
            assert action["factoryId"] == "DASHBOARD_TO_DASHBOARD_DRILLDOWN"
            assert action["config"]["useCurrentFilters"] and action["config"]["useCurrentDateRange"]
            target = references[
                f"{panel['panelIndex']}:drilldown:DASHBOARD_TO_DASHBOARD_DRILLDOWN:{event['eventId']}:dashboardId"
            ]
            assert (target["type"], target["id"]) == ("dashboard", "task-time-overview")
            # The click filters on the panel's bucket field, which the task indices map too.
            lens_id = references[f"{panel['panelIndex']}:{panel['panelRefName']}"]["id"]
            fields = {
                c["sourceField"]
                for c in kibana_objects.lens_layer(OBJECTS[("lens", lens_id)])["columns"].values()
                if c["operationType"] == "terms"
            }
            assert fields == {"queue"}
    assert drilldowns >= 2
    task_mapping = json.loads((REPO / "elasticsearch/component-templates/task-time-mappings.json").read_text())
    assert task_mapping["template"]["mappings"]["properties"]["queue"]["type"] == "keyword"


@pytest.mark.unit
def test_every_rule_and_connector_file_is_well_formed_and_tagged_on_install() -> None:
    rules = [a for a in ALERTING.values() if a.kind == "rule"]
    assert {r.body["rule_type_id"] for r in rules} <= {".es-query", ".index-threshold"}  # basic licence
    assert {a.body["connector_type_id"] for a in ALERTING.values() if a.kind == "connector"} == {".server-log"}
    for rule in rules:
        created, updated = rule_request(rule, create=True), rule_request(rule, create=False)
        assert f"rq-task-time:{rule.digest}" in created["tags"] and created["enabled"] is True
        assert "rule_type_id" not in updated and "consumer" not in updated and "enabled" not in updated
        assert rule.body["params"]["index"] == [OBJECTS[("index-pattern", "queue-monitor")]["attributes"]["title"]]


# ------------------------------------------------------------ real cluster, real data


@pytest.fixture
def monitored(es: ElasticsearchTarget) -> Elasticsearch:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    index(
        client,
        [
            redis_line("ok", ago=600, memory_used_pct=40.0),
            redis_line("critical", ago=30, memory_used_pct=93.5),
            node_line("ok", ago=600, memory_used_pct=30.0),
            node_line("warn", ago=30, memory_used_pct=85.0),  # rabbit@mq1 past 80 %
            node_line("ok", ago=30, node="rabbit@mq2", memory_used_pct=20.0),
            node_error_line("rabbit@mq3", ago=30),  # a node, but no memory figure
            queue("default", "ok", ago=600, depth=3, latency=1.0),
            queue("default", "critical", ago=30, depth=40, latency=400.0, workers=0, busy=0, idle=0),
            queue("high", "warn", ago=30, depth=2, latency=5.0, abandoned=1),
            queue("low", "ok", ago=30, depth=0),
        ],
    )
    return client


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_queues_in_trouble_lists_warn_and_critical_lines_only(monitored: Elasticsearch) -> None:
    search = OBJECTS[("search", "queue-monitor-trouble")]
    title = kibana_objects.data_view(search, OBJECTS)["attributes"]["title"]
    hits = monitored.search(index=title, **kibana_objects.search_request(search))["hits"]["hits"]
    # Critical: the Redis line, queue default, node rabbit@mq3's error; warn: queue high, node rabbit@mq1.
    assert sorted(hit["_source"]["status"] for hit in hits) == ["critical", "critical", "critical", "warn", "warn"]
    assert {hit["_source"].get("queue") for hit in hits} == {"default", "high", None}  # None: Redis and the nodes
    assert {hit["_source"].get("node") for hit in hits} == {"rabbit@mq1", "rabbit@mq3", None}


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_queue_table_shows_latest_status_and_worst_latency_per_queue(monitored: Elasticsearch) -> None:
    lens = OBJECTS[("lens", "queue-monitor-queues")]
    columns = kibana_objects.lens_layer(lens)["columns"]
    terms = columns["queue"]
    metrics: dict[str, Any] = {}
    for cid, column in columns.items():
        if column["operationType"] == "max":
            metrics[cid] = {"max": {"field": column["sourceField"]}}
        elif column["operationType"] == "sum":
            metrics[cid] = {"sum": {"field": column["sourceField"]}}
        elif column["operationType"] == "last_value":  # Lens's last value of a keyword: top_hits sorted by time
            metrics[cid] = {
                "top_hits": {
                    "size": 1,
                    "sort": [{column["params"]["sortField"]: {"order": "desc"}}],
                    "fields": [column["sourceField"]],
                    "_source": False,
                }
            }
    order = terms["params"]["orderBy"]["columnId"]
    request = {
        "size": 0,
        "query": {"query_string": {"query": lens["attributes"]["state"]["query"]["query"]}},
        "aggs": {
            "queue": {
                "terms": {
                    "field": "queue",
                    "size": terms["params"]["size"],
                    "order": {order: terms["params"]["orderDirection"]},
                },
                "aggs": metrics,
            }
        },
    }
    buckets = monitored.search(index="queue-monitor-*", **request)["aggregations"]["queue"]["buckets"]
    assert [b["key"] for b in buckets][:2] == ["default", "high"]  # worst latency first
    default = buckets[0]
    [latest] = default["status"]["hits"]["hits"]
    assert latest["fields"]["status"] == ["critical"]  # the latest sample's status
    assert default["latency"]["value"] == 400.0 and default["depth"]["value"] == 40


# What each Lens panel of Queue health shows for the ``monitored`` lines of the last hour: per
# term of its split (None: a panel without one), the highest value of each metric column over
# the time buckets (a last value as it is).
PANELS: dict[str, dict[str | None, dict[str, Any]]] = {
    "queue-monitor-memory": {"127.0.0.1:6379/0": {"memory": 93.5}},  # the node lines have no `redis`
    # rabbit@mq1's older 30 % is below its 85 %; rabbit@mq3's error line has no memory figure.
    "queue-monitor-node-memory": {"rabbit@mq1": {"memory": 85.0}, "rabbit@mq2": {"memory": 20.0}},
    "queue-monitor-latency": {"default": {"latency": 400.0}, "high": {"latency": 5.0}},  # low: latency unknown
    "queue-monitor-depth": {"default": {"depth": 40}, "high": {"depth": 2}, "low": {"depth": 0}},
    "queue-monitor-workers": {None: {"busy": 0, "idle": 1}},
    "queue-monitor-queues": {
        "default": {"abandoned": 0, "depth": 40, "failed": 0, "latency": 400.0, "status": "critical"},
        "high": {"abandoned": 1, "depth": 2, "failed": 0, "latency": 5.0, "status": "warn"},
        "low": {"abandoned": 0, "depth": 0, "failed": 0, "status": "ok"},
    },
}


def _panel_values(lens: dict[str, Any], aggregations: dict[str, Any]) -> dict[str | None, dict[str, Any]]:
    """A Lens panel's response as ``PANELS`` has it: term -> metric column -> highest value."""
    layer = kibana_objects.lens_layer(lens)
    columns = layer["columns"]
    buckets = [cid for cid in layer["columnOrder"] if columns[cid]["isBucketed"]]
    metrics = [cid for cid in layer["columnOrder"] if not columns[cid]["isBucketed"]]
    found: dict[str | None, dict[str, Any]] = {}

    def walk(aggs: dict[str, Any], depth: int, term: str | None) -> None:
        if depth == len(buckets):
            row = found.setdefault(term, {})
            for cid in metrics:
                operation = columns[cid]["operationType"]
                if operation == "count":
                    value = aggs["doc_count"]
                elif operation == "last_value":
                    [hit] = aggs[cid]["hits"]["hits"]
                    [value] = hit["fields"][columns[cid]["sourceField"]]
                else:
                    value = aggs[cid]["value"]
                if value is not None and (cid not in row or operation == "last_value" or value > row[cid]):
                    row[cid] = value
            return
        cid = buckets[depth]
        for bucket in aggs[cid]["buckets"]:
            walk(bucket, depth + 1, bucket["key"] if columns[cid]["operationType"] == "terms" else term)

    walk(aggregations, 0, None)
    return found


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_every_lens_panel_of_queue_health_shows_the_lines_it_is_for(monitored: Elasticsearch) -> None:
    dashboard = OBJECTS[("dashboard", "queue-health")]
    panels = [ref["id"] for ref in dashboard["references"] if ref["type"] == "lens"]
    assert sorted(panels) == sorted(PANELS)  # a new panel needs its expected values here
    now = time.time()
    start, end = (time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)) for t in (now - 3600, now))
    for lens_id in panels:
        lens = OBJECTS[("lens", lens_id)]
        view = kibana_objects.data_view(lens, OBJECTS)["attributes"]
        request = kibana_objects.lens_request(lens, view["timeFieldName"], start, end, 3600)
        response = monitored.search(index=view["title"], **request)
        assert _panel_values(lens, response["aggregations"]) == PANELS[lens_id], lens_id


ALL_DOCUMENTS = "all documents"  # the one group of a rule not grouped by a field


def _firing_groups(client: Elasticsearch, rule: dict[str, Any]) -> set[str]:
    """Evaluate a rule's condition as its rule type does: a query over the time window, then the threshold.

    Returns the groups (``termField`` values) that meet it; ``ALL_DOCUMENTS`` for a rule without groups.
    """
    params = rule["params"]
    window = {"range": {params["timeField"]: {"gte": f"now-{params['timeWindowSize']}{params['timeWindowUnit']}"}}}
    comparators = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}
    compare = comparators[params["thresholdComparator"]]
    if rule["rule_type_id"] == ".es-query":
        query = json.loads(params["esQuery"])["query"]
        count = client.count(index=params["index"], query={"bool": {"filter": [query, window]}})["count"]
        return {ALL_DOCUMENTS} if compare(float(count), float(params["threshold"][0])) else set()
    assert rule["rule_type_id"] == ".index-threshold"
    assert params["groupBy"] == "top"
    aggregation = {params["aggType"]: {"field": params["aggField"]}}
    response = client.search(
        index=params["index"],
        size=0,
        query=window,
        aggs={
            "group": {"terms": {"field": params["termField"], "size": params["termSize"]}, "aggs": {"v": aggregation}}
        },
    )
    return {
        b["key"]
        for b in response["aggregations"]["group"]["buckets"]
        if b["v"]["value"] is not None and compare(float(b["v"]["value"]), float(params["threshold"][0]))
    }


def _rule_fires(client: Elasticsearch, rule: dict[str, Any]) -> bool:
    return bool(_firing_groups(client, rule))


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_rules_fire_on_the_samples_they_are_for(monitored: Elasticsearch) -> None:
    rules = {rule_id: asset.body for (kind, rule_id), asset in ALERTING.items() if kind == "rule"}
    fired = {rule_id: _firing_groups(monitored, rule) for rule_id, rule in rules.items()}
    assert fired == {
        "queue-monitor-critical": {ALL_DOCUMENTS},
        "queue-monitor-warn": {ALL_DOCUMENTS},
        "redis-memory-high": {"127.0.0.1:6379/0"},  # 93.5 %; the nodes are not Redis
        "rabbitmq-memory-high": {"rabbit@mq1"},  # 85 %; rabbit@mq2 at 20 % stays quiet, Redis is no node
        "queue-monitor-silent": set(),
    }


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_rules_stay_quiet_on_healthy_samples_and_the_silence_rule_sees_a_gap(es: ElasticsearchTarget) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    rules = {rule_id: asset.body for (kind, rule_id), asset in ALERTING.items() if kind == "rule"}
    old = [redis_line("ok", ago=3600), node_line("ok", ago=3600), queue("default", "ok", ago=3600)]
    index(client, old)  # only old samples: a gap
    assert {rule_id: _rule_fires(client, rule) for rule_id, rule in rules.items()}["queue-monitor-silent"] is True
    healthy = [redis_line("ok", memory_used_pct=79.9), node_line("ok", memory_used_pct=79.9)]
    index(client, [*healthy, queue("default", "ok", depth=1, latency=2.0)])
    assert not any(_rule_fires(client, rule) for rule in rules.values())


# ------------------------------------------------------------- alerting API requests


def kibana_with_alerting(installed: dict[str, dict], health: dict | None = None, status_for_writes: int = 200):
    """A recording Kibana with alerting: ``installed`` maps API paths to what a GET returns."""
    health = {"has_permanent_encryption_key": True, "is_sufficiently_secure": True} if health is None else health

    def nothing_imported(request: Request) -> Reply:
        return reply_json(200, {"success": True, "successCount": 0, "successResults": []})

    def alerting(request: Request) -> Reply:
        if request.path == "/api/alerting/_health":
            return reply_json(200, health)
        if request.method == "GET":
            if request.path in installed:
                return reply_json(200, installed[request.path])
            return reply_json(404, {"statusCode": 404, "message": "Saved object not found"})
        return reply_json(status_for_writes, {"id": request.path.rsplit("/", 1)[-1], "message": "refused"})

    return kibana(import_reply=nothing_imported, other=alerting)


def run_kibana_only(es: ElasticsearchTarget, url: str) -> Any:
    return bootstrap(es, "--kibana-only", KIBANA_URL=url)


@pytest.mark.elasticsearch
def test_first_run_creates_the_connector_then_each_rule_enabled(es: ElasticsearchTarget) -> None:
    with kibana_with_alerting({}) as (url, requests):
        done = run_kibana_only(es, url)
    assert done.returncode == 0, done.stderr
    writes = [r for r in requests if r.method in ("POST", "PUT") and "/api/saved_objects/" not in r.path]
    connectors = [a for a in ALERTING.values() if a.kind == "connector"]
    rules = [a for a in ALERTING.values() if a.kind == "rule"]
    assert [r.path for r in writes] == [a.api for a in connectors] + [a.api for a in rules]
    assert all(r.method == "POST" and r.headers["kbn-xsrf"] for r in writes)
    assert writes[0].json() == {
        "name": connectors[0].body["name"],
        "connector_type_id": ".server-log",
        "config": {},
        "secrets": {},
    }
    for request, rule in zip(writes[len(connectors) :], rules, strict=True):
        assert request.json() == rule_request(rule, create=True)
        assert f"kibana: rule {rule.id}: created" in done.stdout


@pytest.mark.elasticsearch
def test_installed_rules_are_unchanged_or_updated_by_digest(es: ElasticsearchTarget) -> None:
    rules = [a for a in ALERTING.values() if a.kind == "rule"]
    installed = {a.api: {**a.body} for a in ALERTING.values() if a.kind == "connector"}
    for rule in rules:
        installed[rule.api] = {**rule_request(rule, create=True), "id": rule.id}
    stale = rules[0]
    installed[stale.api]["tags"] = ["rq-task-time", "rq-task-time:0000000000000000"]
    with kibana_with_alerting(installed) as (url, requests):
        done = run_kibana_only(es, url)
    assert done.returncode == 0, done.stderr
    writes = [
        (r.method, r.path) for r in requests if r.method in ("POST", "PUT") and "/api/saved_objects/" not in r.path
    ]
    assert writes == [("PUT", stale.api)]
    [update] = [r for r in requests if r.method == "PUT"]
    assert update.json() == rule_request(stale, create=False)
    assert f"kibana: rule {stale.id}: updated" in done.stdout
    assert all(f"kibana: rule {r.id}: unchanged" in done.stdout for r in rules[1:])


@pytest.mark.elasticsearch
def test_without_an_encryption_key_rules_are_skipped_with_the_reason(es: ElasticsearchTarget) -> None:
    with kibana_with_alerting({}, health={"has_permanent_encryption_key": False}) as (url, requests):
        done = run_kibana_only(es, url)
    assert done.returncode == 0, done.stderr
    assert not [r for r in requests if r.method in ("POST", "PUT") and "/api/alerting/" in r.path]
    assert "skipped (Kibana has no xpack.encryptedSavedObjects.encryptionKey" in done.stdout


@pytest.mark.elasticsearch
def test_a_rule_kibana_refuses_is_one_line_naming_its_file(es: ElasticsearchTarget) -> None:
    with kibana_with_alerting({}, status_for_writes=400) as (url, _):
        done = run_kibana_only(es, url)
    assert done.returncode == 1
    [error] = done.stderr.strip().splitlines()
    assert error.startswith("bootstrap: error: kibana: rejected connector rq-task-time-server-log from ")
    assert "kibana/alerting/connectors/rq-task-time-server-log.json: HTTP 400: refused" in error
