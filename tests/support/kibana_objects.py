"""Read the saved objects in kibana/ the way Kibana would, to run their queries on a real cluster.

The tests have no Kibana. These helpers take a saved search's query and sort, and a Lens
table's columns, out of the object files (read with bootstrap's own loader, nested JSON
decoded) and turn them into the Elasticsearch requests Kibana sends for them (a
``query_string`` for Lucene queries, terms/metric aggregations for Lens).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pipeline.bootstrap.saved_objects import load_saved_objects

REPO = Path(__file__).resolve().parents[2]


def objects(root: Path = REPO) -> dict[tuple[str, str], dict[str, Any]]:
    """Every saved object by (type, id), as its file holds it."""
    return {saved.key: saved.body for saved in load_saved_objects(root)}


def search_source(saved: dict[str, Any]) -> dict[str, Any]:
    return saved["attributes"]["kibanaSavedObjectMeta"]["searchSourceJSON"]


def search_request(saved: dict[str, Any], size: int = 100) -> dict[str, Any]:
    """The query and sort Discover sends for a saved search (Lucene queries only)."""
    source = search_source(saved)
    query = source["query"]
    assert query["language"] == "lucene", "only Lucene queries run as written; KQL needs Kibana"
    assert not source.get("filter"), "filters are not translated"
    must = [{"query_string": {"query": query["query"], "analyze_wildcard": True}}] if query["query"] else []
    return {
        "query": {"bool": {"must": must}},
        "sort": [{field: {"order": order}} for field, order in saved["attributes"]["sort"]],
        "size": size,
    }


def lens_layer(lens: dict[str, Any]) -> dict[str, Any]:
    """The one layer of a Lens object that reads data (reference-line layers hold static values only)."""
    layers = lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"].values()
    [layer] = [layer for layer in layers if not all(c.get("isStaticValue") for c in layer["columns"].values())]
    return layer


def data_view(saved: dict[str, Any], found: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """The data view a search or Lens object reads (a data view is its own)."""
    if saved["type"] == "index-pattern":
        return saved
    [view_id] = {ref["id"] for ref in saved["references"] if ref["type"] == "index-pattern"}
    return found[("index-pattern", view_id)]


_METRICS = {
    "sum": lambda column: {"sum": {"field": column["sourceField"]}},
    "average": lambda column: {"avg": {"field": column["sourceField"]}},
    "percentile": lambda column: {
        "percentiles": {"field": column["sourceField"], "percents": [column["params"]["percentile"]]}
    },
}


def lens_table_request(lens: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """The aggregation for a Lens table of one terms column and metric columns.

    Returns the request body and, per column id, where its value is found in a bucket.
    """
    layer = lens_layer(lens)
    columns = layer["columns"]
    [(bucket_id, bucket)] = [(cid, c) for cid, c in columns.items() if c["isBucketed"]]
    assert bucket["operationType"] == "terms"
    metrics, paths = {}, {}
    for cid, column in columns.items():
        if column["isBucketed"]:
            continue
        if column["operationType"] == "count":
            paths[cid] = "doc_count"
            continue
        metrics[cid] = _METRICS[column["operationType"]](column)
        paths[cid] = f"{cid}.value" if column["operationType"] != "percentile" else f"{cid}.values"
    order_by = bucket["params"]["orderBy"]
    assert order_by["type"] == "column"
    order_key = "_count" if columns[order_by["columnId"]]["operationType"] == "count" else order_by["columnId"]
    if columns[order_by["columnId"]]["operationType"] == "percentile":
        order_key += f"[{columns[order_by['columnId']]['params']['percentile']}]"
    query = lens["attributes"]["state"]["query"]
    assert query["language"] == "lucene"
    request = {
        "size": 0,
        "query": {"query_string": {"query": query["query"]}} if query["query"] else {"match_all": {}},
        "aggs": {
            bucket_id: {
                "terms": {
                    "field": bucket["sourceField"],
                    "size": bucket["params"]["size"],
                    "order": {order_key: bucket["params"]["orderDirection"]},
                },
                "aggs": metrics,
            }
        },
    }
    return request, paths


def fields_used(saved: dict[str, Any]) -> set[str]:
    """Every document field a saved object refers to (columns, sorts, Lens source fields, query fields)."""
    attributes = saved["attributes"]
    used: set[str] = set()
    if saved["type"] == "search":
        used |= set(attributes["columns"])
        used |= {field for field, _ in attributes["sort"]}
        used |= _query_fields(search_source(saved)["query"]["query"])
    elif saved["type"] == "lens":
        for column in lens_layer(saved)["columns"].values():
            if column.get("sourceField") and column["sourceField"] != "___records___":
                used.add(column["sourceField"])
        used |= _query_fields(attributes["state"]["query"]["query"])
    elif saved["type"] == "index-pattern":
        used.add(attributes["timeFieldName"])
        used |= set(attributes.get("fieldFormatMap") or {})
    return used


def _query_fields(query: str) -> set[str]:
    """Field names in a Lucene query: ``field:value`` and ``_exists_:field``."""
    names = set(re.findall(r"([\w.@]+):", query))
    exists = set(re.findall(r"_exists_:([\w.@]+)", query))
    return (names - {"_exists_"}) | exists
