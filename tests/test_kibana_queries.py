"""The saved searches' and the dashboard's queries, read from kibana/ and run on real data in the real cluster.

The tests start no Kibana: ``harness.kibana_objects`` turns each object's query,
sort and Lens columns into the request Kibana sends for them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime

import pytest

from harness import kibana_objects
from tests.conftest import ElasticsearchTarget, bootstrap
from tests.support.documents import golden_documents, index_documents

pytestmark = [pytest.mark.elasticsearch]


def test_slowest_tasks_search_from_the_object_files_returns_descending_task_time(es: ElasticsearchTarget) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    index_documents(client, golden_documents())
    saved = kibana_objects.objects()[("search", "task-time-slowest")]
    data_view = kibana_objects.objects()[("index-pattern", "task-time")]["attributes"]["title"]
    hits = client.search(index=data_view, **kibana_objects.search_request(saved))["hits"]["hits"]
    times = [hit["_source"]["task_time"] for hit in hits]
    parsed = [doc for index, doc in golden_documents() if "task_time_unparsed" not in doc.get("tags", [])]
    assert times == sorted((doc["task_time"] for doc in parsed), reverse=True)
    assert hits[0]["_source"]["task_name"] == "jobs.report"
    assert all("task_time_unparsed" not in hit["_source"].get("tags", []) for hit in hits)

    problems = kibana_objects.objects()[("search", "task-time-problems")]
    statuses = {
        hit["_source"]["status"]
        for hit in client.search(index=data_view, **kibana_objects.search_request(problems))["hits"]["hits"]
    }
    assert statuses == {"failed", "timeout", "killed", "retry"}  # retry: the golden Celery line

    unparsed = kibana_objects.objects()[("search", "task-time-unparsed")]
    kept = client.search(index=data_view, **kibana_objects.search_request(unparsed))["hits"]["hits"]
    expected = [doc["message"] for _, doc in golden_documents() if "task_time_unparsed" in doc.get("tags", [])]
    assert sorted(hit["_source"]["message"] for hit in kept) == sorted(expected)


def test_dashboard_ranking_aggregations_return_the_expected_order(es: ElasticsearchTarget) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    samples = {  # task -> task times: the most total time is not the slowest single run
        "jobs.many_small": [0.5] * 30,
        "jobs.one_big": [9.0],
        "jobs.middle": [2.0, 2.5, 3.0, 2.0],
        "jobs.tiny": [0.01, 0.02],
    }
    stamp = datetime(2026, 11, 20, 12, tzinfo=UTC).isoformat()
    documents = [
        (
            "task-time-2026.11.20",
            {"@timestamp": stamp, "task_name": task, "task_time": t, "wait_time": 0.1, "status": "finished"},
        )
        for task, times in samples.items()
        for t in times
    ]
    index_documents(client, documents)
    ranking = kibana_objects.objects()[("lens", "task-time-ranking")]
    request, paths = kibana_objects.lens_table_request(ranking)
    [(_, aggregation)] = client.search(index="task-time-*", **request)["aggregations"].items()
    buckets = aggregation["buckets"]
    totals = {task: sum(times) for task, times in samples.items()}
    assert [b["key"] for b in buckets] == sorted(totals, key=totals.get, reverse=True)
    for bucket in buckets:
        times = samples[bucket["key"]]
        assert bucket["doc_count"] == len(times)
        columns = kibana_objects.lens_layer(ranking)["columns"]
        for column_id, column in columns.items():
            if column["operationType"] == "sum":
                assert bucket[column_id]["value"] == pytest.approx(sum(times))
            elif column["operationType"] == "percentile":
                [value] = bucket[column_id]["values"].values()
                assert min(times) <= value <= max(times)
    metric_columns = {
        cid for cid, column in kibana_objects.lens_layer(ranking)["columns"].items() if not column["isBucketed"]
    }
    assert set(paths) == metric_columns  # every metric column of the table has a value in each bucket
    for bucket in buckets:
        assert bucket["doc_count"] and all(bucket[path.split(".")[0]] for path in paths.values() if "." in path)


def test_saved_search_and_ranking_hold_on_lines_from_every_outcome(es: ElasticsearchTarget) -> None:
    """Groups of golden documents by task give the ranking Python computes from them."""
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    index_documents(client, golden_documents())
    ranking = kibana_objects.objects()[("lens", "task-time-ranking")]
    request, _ = kibana_objects.lens_table_request(ranking)
    [(_, aggregation)] = client.search(index="task-time-*", **request)["aggregations"].items()
    totals: dict[str, float] = defaultdict(float)
    for index, doc in golden_documents():
        if index.startswith("task-time-2") and "task_time" in doc:
            totals[doc["task_name"]] += doc["task_time"]
    assert [b["key"] for b in aggregation["buckets"]] == sorted(totals, key=lambda k: (-totals[k], k))
