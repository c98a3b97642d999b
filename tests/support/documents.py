"""Documents shaped like parsed lines, put into the real cluster as Logstash's bulk requests do."""

from __future__ import annotations

import json
from pathlib import Path

from elasticsearch import Elasticsearch

GOLDEN = Path(__file__).resolve().parents[1] / "golden"


def index_documents(client: Elasticsearch, documents: list[tuple[str, dict]]) -> None:
    operations = []
    for index, document in documents:
        operations += [{"create": {"_index": index}}, document]
    response = client.bulk(operations=operations, refresh="wait_for")
    assert not response["errors"], [i for i in response["items"] if i["create"].get("error")][:3]


def golden_documents() -> list[tuple[str, dict]]:
    expected = json.loads((GOLDEN / "task-time.expected.json").read_text(encoding="utf-8"))
    return [(item["index"], item["document"]) for item in expected]
