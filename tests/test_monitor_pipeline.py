"""The queue-monitor Logstash pipeline: golden pairs, the contract with pipeline/lines/queue.py, real lines,
and documents bulk-created into the real cluster as the least-privilege writer."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from elasticsearch import AuthorizationException, Elasticsearch
from redis import Redis
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline import settings
from tests import tasks
from tests.conftest import ElasticsearchTarget
from tests.support import logstash
from tests.support.monitor import CONFIG, read_events, run_monitor
from tests.support.queue_monitor_golden import EXPECTED, documents, golden_lines

REPO = Path(__file__).resolve().parents[1]
MAPPING = json.loads((REPO / "elasticsearch" / "component-templates" / "queue-monitor-mappings.json").read_text())
TEMPLATE = json.loads((REPO / "elasticsearch" / "index-templates" / "queue-monitor.json").read_text())


def _grok() -> logstash.Plugin:
    [grok] = logstash.plugins(logstash.load(CONFIG)["filter"], "grok")
    return grok


@pytest.mark.jvm
def test_golden_lines_become_the_golden_documents() -> None:
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    assert len(golden_lines()) == len(expected)
    for text, got, wanted in zip(golden_lines(), documents(), expected, strict=True):
        assert got == wanted, text


@pytest.mark.jvm
def test_every_golden_line_is_kept_parsed_or_marked() -> None:
    parsed = 0
    for text, got in zip(golden_lines(), documents(), strict=True):
        document = got["document"]
        assert document["message"] == text
        ok = "queue_monitor_unparsed" not in document.get("tags", [])
        assert got["index"].startswith("queue-monitor-2026" if ok else "queue-monitor-unparsed-"), text
        assert ok == ("status" in document and "timestamp" not in document), text
        parsed += ok
    assert parsed == 17  # the rest are malformed on purpose


@pytest.mark.redis
@pytest.mark.jvm
def test_real_monitor_lines_parse_into_the_sampled_values(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    Queue("queue with spaces\tand ünïcode", connection=redis).enqueue(tasks.no_op)
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "m.log", "--once", "--name", "a name")
    assert done.returncode == 0, done.stderr
    redis_line, queue_line = read_events(tmp_path / "m.log")
    assert redis_line["monitor"] == "a%20name" and redis_line["redis"] == f"127.0.0.1:{redis_server.port}/0"
    assert isinstance(redis_line["used_memory"], int) and redis_line["used_memory"] > 100_000
    assert redis_line["maxmemory_policy"] == "noeviction" and redis_line["suspended"] == "false"
    assert queue_line["queue"] == "queue%20with%20spaces%09and%20ünïcode"
    assert (queue_line["depth"], queue_line["workers"], queue_line["status"]) == (1, 0, "critical")
    assert 0 <= queue_line["latency"] < 30


@pytest.mark.unit
def test_file_inputs_split_the_logs_between_the_two_pipelines() -> None:
    [monitor_input] = logstash.plugins(logstash.load(CONFIG)["input"], "file")
    [task_input] = logstash.plugins(logstash.load()["input"], "file")
    monitor_paths = [logstash.substitute(path, {}) for path in monitor_input.options["path"]]
    task_paths = [logstash.substitute(path, {}) for path in task_input.options["path"]]
    for log, own, other in (
        (settings.MONITOR_LOG.default, monitor_paths, task_paths),
        (settings.TASK_LOG.default, task_paths, monitor_paths),
    ):
        assert any(Path(log).match(pattern) for pattern in own), log
        assert any(Path(log + ".1").match(pattern) for pattern in own), "rotated files must still be read"
        assert not any(Path(log).match(pattern) or Path(log + ".1").match(pattern) for pattern in other), log
    assert monitor_input.options["sincedb_path"] != task_input.options["sincedb_path"]
    assert monitor_input.options["sincedb_path"].startswith("/usr/share/logstash/data/")
    assert Path(settings.MONITOR_LOG.default).parent == Path(settings.TASK_LOG.default).parent


@pytest.mark.unit
def test_pipelines_yml_runs_every_pipeline_file_once() -> None:
    pipelines = yaml.safe_load((REPO / "logstash" / "config" / "pipelines.yml").read_text())
    configs = {entry["pipeline.id"]: entry["path.config"] for entry in pipelines}
    assert configs == {
        path.stem: f"/usr/share/logstash/pipeline/{path.name}"
        for path in (REPO / "logstash" / "pipeline").glob("*.conf")
    }


@pytest.mark.unit
def test_output_is_the_same_writer_creating_daily_indices_the_template_covers() -> None:
    [output] = logstash.plugins(logstash.load(CONFIG)["output"], "elasticsearch")
    [task_output] = logstash.plugins(logstash.load()["output"], "elasticsearch")
    for option in ("hosts", "user", "password", "index", "document_id", "action", "manage_template", "ilm_enabled"):
        assert output.options[option] == task_output.options[option], option
    assert output.options["action"] == "create"
    for index in ("queue-monitor-2026.11.22", "queue-monitor-unparsed-2026.11.22"):
        assert any(Path(index).match(pattern) for pattern in TEMPLATE["index_patterns"])
    assert not any(Path("task-time-2026.11.22").match(pattern) for pattern in TEMPLATE["index_patterns"])
    role = json.loads((REPO / "elasticsearch" / "roles" / "task_time_logstash_writer.json").read_text())
    assert any("queue-monitor-*" in entry["names"] for entry in role["indices"])


@pytest.fixture
def golden_documents() -> list[dict]:
    return documents()


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_the_writer_bulk_creates_golden_documents_as_mapped(
    es: ElasticsearchTarget, writer: Elasticsearch, golden_documents: list[dict]
) -> None:
    operations: list[dict] = []
    for item in golden_documents:
        operations += [{"create": {"_index": item["index"], "_id": item["id"]}}, item["document"]]
    result = writer.bulk(operations=operations, refresh="wait_for")
    assert not result["errors"], [i for i in result["items"] if i["create"].get("error")][:2]
    again = writer.bulk(operations=operations[:2])  # the same line read twice is refused, not counted twice
    assert again["items"][0]["create"]["status"] == 409
    admin = es.client()
    mapping = admin.indices.get_mapping(index="queue-monitor-2026.11.22")["queue-monitor-2026.11.22"]["mappings"]
    for name, spec in MAPPING["template"]["mappings"]["properties"].items():
        assert mapping["properties"][name] == spec, name
    assert mapping["dynamic"] == "false"
    critical = admin.search(
        index="queue-monitor-*",
        query={"bool": {"filter": [{"term": {"status": "critical"}}, {"exists": {"field": "queue"}}]}},
    )
    assert sorted(hit["_source"]["queue"] for hit in critical["hits"]["hits"]) == ["celery", "default"]
    top = admin.search(index="queue-monitor-2026.11.22", sort=[{"memory_used_pct": "desc"}], size=1)
    assert top["hits"]["hits"][0]["_source"]["memory_used_pct"] == 100.01
    suspended = admin.count(index="queue-monitor-2026.11.22", query={"term": {"suspended": True}})
    assert suspended["count"] == 1
    alarms = admin.count(index="queue-monitor-2026.11.22", query={"term": {"memory_alarm": True}})
    assert alarms["count"] == 1
    celery = admin.count(index="queue-monitor-2026.11.22", query={"term": {"system": "celery"}})
    rabbitmq = admin.count(index="queue-monitor-2026.11.22", query={"term": {"broker": "rabbitmq"}})
    assert (celery["count"], rabbitmq["count"]) == (6, 3)
    unparsed = admin.count(index="queue-monitor-unparsed-*")["count"]
    assert unparsed == len(golden_documents) - 17
    with pytest.raises(AuthorizationException):
        writer.search(index="queue-monitor-*")


@pytest.mark.redis
@pytest.mark.jvm
def test_monitor_and_logstash_agree_on_the_configured_zone(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    zone = {"TASK_TIME_TZ": "America/St_Johns"}  # UTC-3:30 or -2:30: no whole-hour accident
    before = datetime.now(UTC)
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "m.log", "--once", **zone)
    after = datetime.now(UTC)
    assert done.returncode == 0, done.stderr
    [text] = (tmp_path / "m.log").read_text().splitlines()
    event = logstash.Pipeline(path=CONFIG, environ=zone).run(text)
    assert before - timedelta(milliseconds=1) <= event["@timestamp"] <= after
    bad = run_monitor(monitor_url(redis_server.url), tmp_path / "bad.log", "--once", TASK_TIME_TZ="Mars/Olympus")
    assert bad.returncode == 2 and len(bad.stderr.splitlines()) == 1 and "Mars/Olympus" in bad.stderr
    assert not (tmp_path / "bad.log").exists()
