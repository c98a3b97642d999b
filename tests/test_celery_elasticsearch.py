"""Celery executions in the same indices and saved searches as RQ's, on the real Elasticsearch.

A real ``celery worker`` (prefork, on the test Redis) writes its lines to a log that also
holds an RQ line on a queue of the same name; the lines go through the Logstash pipeline's
stages (Joni, Joda-Time), are bulk-created by Logstash's writer user, and the saved
searches and the ranking run as their object files say.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from harness import kibana_objects
from harness.redis_server import RedisServer
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.task import TaskRun, format_fields
from tests import celery_tasks as tasks
from tests.conftest import ElasticsearchTarget, bootstrap
from tests.support import logstash
from tests.support.celery_workers import start_celery_worker, stop_celery_worker, use_broker, wait_for_lines
from tests.support.lines import parse

pytestmark = [pytest.mark.redis, pytest.mark.elasticsearch, pytest.mark.jvm]


def test_celery_and_rq_executions_rank_side_by_side_in_the_saved_searches(
    redis_server: RedisServer, tmp_path: Path, es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    redis_server.connection().flushall()
    use_broker(tasks.app, redis_server.url)
    log = tmp_path / "task-time.log"
    timeout = tasks.sleep_for.apply_async((30,), time_limit=1).id
    tasks.sleep_for.delay(0.3)
    tasks.add.delay(1, 2)
    tasks.fail.delay("boom")
    tasks.retry_once.delay()
    worker = start_celery_worker(redis_server.url, log, concurrency=2)
    try:
        celery_lines = wait_for_lines(log, 6, settle=2)
    finally:
        stop_celery_worker(worker)
    assert len(celery_lines) == 6, celery_lines
    # An RQ execution on a queue called "celery" too, as TimedJob writes it: no System field.
    rq_line = format_line(
        0, format_fields(TaskRun("jobs.send_mail", 0.5, "celery", "finished", 0.1, "r1", "h.1")), LineClock()
    )
    lines = [*celery_lines, rq_line.replace("1970-01-01", parse(celery_lines[0])["time"].strftime("%Y-%m-%d"))]

    pipeline = logstash.Pipeline(environ={})
    operations = []
    for text in lines:
        event = pipeline.run(text, path=str(log))
        assert "tags" not in event, text
        metadata = event["@metadata"]
        operations += [{"create": {"_index": metadata["_index"], "_id": metadata["_id"]}}, logstash.document(event)]
    assert not writer.bulk(operations=operations)["errors"]
    client = es.client()
    client.indices.refresh(index="task-time-*")

    objects = kibana_objects.objects()
    data_view = objects[("index-pattern", "task-time")]["attributes"]["title"]
    slowest = client.search(index=data_view, **kibana_objects.search_request(objects[("search", "task-time-slowest")]))
    hits = [hit["_source"] for hit in slowest["hits"]["hits"]]
    assert len(hits) == 7
    assert [hit["task_time"] for hit in hits] == sorted((hit["task_time"] for hit in hits), reverse=True)
    assert (hits[0]["job_id"], hits[0]["status"], hits[0]["system"]) == (timeout, "timeout", "celery")
    assert {hit.get("system", "rq") for hit in hits if hit["queue"] == "celery"} == {"celery", "rq"}

    problems = client.search(
        index=data_view, **kibana_objects.search_request(objects[("search", "task-time-problems")])
    )
    assert sorted(hit["_source"]["status"] for hit in problems["hits"]["hits"]) == ["failed", "retry", "timeout"]

    # Telling them apart: system:celery, and no system field for RQ.
    assert client.count(index=data_view, q="system:celery")["count"] == 6
    assert client.count(index=data_view, q="NOT _exists_:system")["count"] == 1

    ranking = objects[("lens", "task-time-ranking")]
    request, _ = kibana_objects.lens_table_request(ranking)
    [(_, aggregation)] = client.search(index=data_view, **request)["aggregations"].items()
    ranked = [bucket["key"] for bucket in aggregation["buckets"]]
    assert ranked[0] == "tests.sleep_for" and "jobs.send_mail" in ranked and "tests.add" in ranked
