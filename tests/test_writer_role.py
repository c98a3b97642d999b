"""Logstash's writer user on the real cluster: what it can do, what it is refused, what its errors are.

The role comes from elasticsearch/roles/ (the ``writer`` fixture puts it in the file realm
of the test cluster); documents are the ones the pipeline config makes of lines.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from elasticsearch import AuthorizationException, BadRequestError, Elasticsearch, ElasticsearchWarning

from harness import kibana_objects
from pipeline.lines.clock import format_line
from pipeline.lines.task import TaskRun, format_fields
from tests.conftest import ElasticsearchTarget
from tests.support import logstash

pytestmark = [pytest.mark.elasticsearch, pytest.mark.jvm]

LINE = (
    "Time: 2099-01-02 10:00:00,000 Task: jobs.x Task-time: 1.500000 Queue: default Status: finished Job: j1 Worker: w"
)


def pipeline_event(text: str) -> dict:
    return logstash.Pipeline(environ={}).run(text, received=datetime(2099, 1, 3, tzinfo=UTC))


def bulk_create(writer: Elasticsearch, events: list[dict]) -> list[dict]:
    """Bulk as Logstash's output does (action create, the line's hash as id); each item's result."""
    operations: list[dict] = []
    for event in events:
        metadata = event["@metadata"]
        operations += [{"create": {"_index": metadata["_index"], "_id": metadata["_id"]}}, logstash.document(event)]
    response = writer.bulk(operations=operations, refresh="wait_for")
    return [item["create"] for item in response["items"]]


def test_bulk_creates_a_new_daily_index_through_the_template(es: ElasticsearchTarget, writer: Elasticsearch) -> None:
    [result] = bulk_create(writer, [pipeline_event(LINE)])
    assert result["status"] == 201, result
    admin = es.client()
    mapping = admin.indices.get_mapping(index="task-time-2099.01.02")["task-time-2099.01.02"]["mappings"]
    assert mapping["dynamic"] == "false" and mapping["properties"]["task_time"]["type"] == "double"


def test_the_writer_cannot_create_an_index_or_change_its_settings(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    admin = es.client()
    # A blocked future day would make every later bulk into it fail.
    with pytest.raises(AuthorizationException):
        writer.indices.create(index="task-time-2099.01.01", settings={"index.blocks.write": True})
    assert not admin.indices.exists(index="task-time-2099.01.01")
    with pytest.raises(AuthorizationException):
        writer.indices.create(index="task-time-2099.01.05")

    [created] = bulk_create(writer, [pipeline_event(LINE)])
    assert created["status"] == 201
    with pytest.raises(AuthorizationException):
        writer.indices.put_settings(index="task-time-2099.01.02", settings={"index.blocks.write": True})
    settings = admin.indices.get_settings(index="task-time-2099.01.02")["task-time-2099.01.02"]["settings"]
    assert "blocks" not in settings["index"]

    later = pipeline_event(LINE.replace("Job: j1", "Job: j2"))
    assert [r["status"] for r in bulk_create(writer, [later])] == [201]


def test_a_line_read_twice_is_refused_with_the_error_the_output_silences(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    event = pipeline_event(LINE)
    first, again = bulk_create(writer, [event, event])
    assert first["status"] == 201
    assert again["status"] == 409
    [output] = logstash.plugins(logstash.load()["output"], "elasticsearch")
    assert [again["error"]["type"]] == output.options["silence_errors_in_log"]
    assert es.client().count(index="task-time-2099.01.02")["count"] == 1


def test_an_unknown_field_is_accepted_and_leaves_the_mapping_alone(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    assert [r["status"] for r in bulk_create(writer, [pipeline_event(LINE)])] == [201]
    admin = es.client()
    before = admin.indices.get_mapping(index="task-time-2099.01.02")
    response = writer.bulk(
        operations=[
            {"create": {"_index": "task-time-2099.01.02"}},
            {"@timestamp": "2099-01-02T11:00:00Z", "surprise": {"deep": "x" * 50_000}, "task_time": 2.0},
        ],
        refresh="wait_for",
    )
    assert not response["errors"], response
    assert admin.indices.get_mapping(index="task-time-2099.01.02") == before
    hits = admin.search(index="task-time-2099.01.02", query={"exists": {"field": "surprise.deep"}})
    assert hits["hits"]["total"]["value"] == 0  # kept in _source, never indexed


def test_create_doc_still_lets_the_writer_add_fields_but_not_change_them(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    # What the README says create_doc allows on 9.x: an explicit mapping update adding a
    # field, with a deprecation warning; existing fields keep their types.
    assert [r["status"] for r in bulk_create(writer, [pipeline_event(LINE)])] == [201]
    with pytest.warns(ElasticsearchWarning, match=r"privilege \[create_doc\] allowed the update mapping action"):
        writer.indices.put_mapping(index="task-time-2099.01.02", properties={"extra": {"type": "keyword"}})
    with pytest.raises(BadRequestError):
        writer.indices.put_mapping(index="task-time-2099.01.02", properties={"task_time": {"type": "keyword"}})
    mapping = es.client().indices.get_mapping(index="task-time-2099.01.02")["task-time-2099.01.02"]["mappings"]
    assert mapping["properties"]["task_time"]["type"] == "double"


def test_executions_with_names_elasticsearch_would_refuse_stay_in_the_ranking(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    names = {"emoji": "\U0001f600" * 10_000, "newlines": "\n" * 11_000, "ordinary": "jobs.send_mail"}
    events = []
    for label, name in names.items():
        execution = TaskRun(name, 10.0 if label != "ordinary" else 1.0, name, "finished", 0.1, label, name)
        events.append(pipeline_event(format_line(4_070_952_000.0, format_fields(execution))))  # 2099-01-01
    results = bulk_create(writer, events)
    assert [r["status"] for r in results] == [201, 201, 201], [r.get("error") for r in results]

    ranking = kibana_objects.objects()[("lens", "task-time-ranking")]
    request, _ = kibana_objects.lens_table_request(ranking)
    [(_, aggregation)] = es.client().search(index="task-time-*", **request)["aggregations"].items()
    keys = [bucket["key"] for bucket in aggregation["buckets"]]
    assert set(keys[:2]) == {events[0]["task_name"], events[1]["task_name"]}  # capped, 10 s each
    assert keys[2:] == ["jobs.send_mail"]
    truncated = es.client().count(index="task-time-*", query={"term": {"tags": "task_time_name_truncated"}})
    assert truncated["count"] == 2
