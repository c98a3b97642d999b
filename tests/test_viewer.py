"""The read-only dashboard viewer, its role exactly as elasticsearch/roles/ defines it, on the real cluster.

On the integ-test cluster the role and user go into the file realm (its native realm
cannot store them: the distribution lacks analysis-common); on an ``ES_URL`` cluster
bootstrap creates them from ``KIBANA_VIEWER_PASSWORD``. The Kibana feature privileges in
the role are checked as a request shape in tests/test_bootstrap_requests.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import AuthorizationException, Elasticsearch

from tests.conftest import ElasticsearchTarget, service_user

pytestmark = [pytest.mark.elasticsearch]

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def viewer(es: ElasticsearchTarget) -> Elasticsearch:
    return service_user(es, "task_time_viewer", "task_time_viewer", "viewer-pass-1", "KIBANA_VIEWER_PASSWORD")


def test_viewer_reads_task_indices_and_nothing_else(es: ElasticsearchTarget, viewer: Elasticsearch) -> None:
    admin = es.client()
    admin.index(index="task-time-2026.11.21", document={"task_name": "jobs.x", "task_time": 1.5}, refresh=True)
    admin.index(index="task-time-unparsed-2026.11.21", document={"message": "garbage"}, refresh=True)
    admin.index(index="other-secrets", document={"secret": 1}, refresh=True)
    try:
        assert viewer.count(index="task-time-*")["count"] == 2
        hits = viewer.search(index="task-time-2026.11.21", query={"term": {"task_name": "jobs.x"}})["hits"]["hits"]
        assert [hit["_source"]["task_time"] for hit in hits] == [1.5]
        assert "task_time" in viewer.field_caps(index="task-time-*", fields="task_time")["fields"]  # data views
        assert viewer.indices.get_mapping(index="task-time-*")

        forbidden = [
            lambda: viewer.search(index="other-secrets"),
            lambda: viewer.index(index="task-time-2026.11.21", document={"task_time": 9}),
            lambda: viewer.delete(index="task-time-2026.11.21", id=hits[0]["_id"]),
            lambda: viewer.indices.delete(index="task-time-2026.11.21"),
            lambda: viewer.indices.create(index="task-time-2099.01.01"),
            lambda: viewer.indices.put_settings(index="task-time-2026.11.21", settings={"index.blocks.write": True}),
            lambda: viewer.indices.get_index_template(name="task-time"),
            lambda: viewer.cluster.get_settings(),
            lambda: viewer.security.get_user(),
        ]
        for attempt in forbidden:
            with pytest.raises(AuthorizationException):
                attempt()
        assert viewer.search(index="*")["hits"]["total"]["value"] == 2  # wildcards see task indices only
        assert admin.count(index="task-time-*")["count"] == 2  # nothing was written
    finally:
        admin.indices.delete(index="other-secrets")
