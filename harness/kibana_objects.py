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

REPO = Path(__file__).resolve().parents[1]


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


def reading(view_id: str, found: dict[tuple[str, str], dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """The saved searches and Lens objects of ``found`` that read the data view ``view_id``."""
    return {
        key: saved
        for key, saved in found.items()
        if key[0] in ("search", "lens") and data_view(saved, found)["id"] == view_id
    }


def data_view(saved: dict[str, Any], found: dict[tuple[str, str], dict[str, Any]]) -> dict[str, Any]:
    """The data view a search or Lens object reads (a data view is its own)."""
    if saved["type"] == "index-pattern":
        return saved
    [view_id] = {ref["id"] for ref in saved["references"] if ref["type"] == "index-pattern"}
    return found[("index-pattern", view_id)]


_METRICS = {
    "sum": lambda column: {"sum": {"field": column["sourceField"]}},
    "average": lambda column: {"avg": {"field": column["sourceField"]}},
    "max": lambda column: {"max": {"field": column["sourceField"]}},
    "percentile": lambda column: {
        "percentiles": {"field": column["sourceField"], "percents": [column["params"]["percentile"]]}
    },
    # Lens's last value of a field: the newest document's, by the column's sort field.
    "last_value": lambda column: {
        "top_hits": {
            "size": 1,
            "sort": [{column["params"]["sortField"]: {"order": "desc"}}],
            "fields": [column["sourceField"]],
            "_source": False,
        }
    },
}

# Where a metric's value sits in a bucket, when not at ``<column>.value``.
_VALUE_PATHS = {"percentile": ".values", "last_value": ".hits.hits"}


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
        paths[cid] = cid + _VALUE_PATHS.get(column["operationType"], ".value")
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


# Kibana's default histogram:barTarget: "auto" intervals aim at about this many buckets.
BAR_TARGET = 50
# Round intervals an "auto" date histogram may take, in seconds (Kibana picks the nearest).
_AUTO_INTERVALS = [
    (1, "1s"), (5, "5s"), (10, "10s"), (30, "30s"), (60, "1m"), (300, "5m"), (600, "10m"), (1800, "30m"),
    (3600, "1h"), (3 * 3600, "3h"), (12 * 3600, "12h"), (86400, "1d"), (7 * 86400, "7d"), (30 * 86400, "30d"),
]  # fmt: skip


def auto_interval(seconds: float) -> str:
    """The fixed interval Kibana's "auto" date histogram uses for a time range of ``seconds``."""
    wanted = seconds / BAR_TARGET
    return min(_AUTO_INTERVALS, key=lambda pair: abs(pair[0] - wanted))[1]


def time_filter(field: str, start: str, end: str) -> dict[str, Any]:
    """The range filter Kibana adds for the time picker on a data view's time field."""
    return {"range": {field: {"gte": start, "lte": end, "format": "strict_date_optional_time"}}}


HIGHLIGHT = {
    "pre_tags": ["@kibana-highlighted-field@"],
    "post_tags": ["@/kibana-highlighted-field@"],
    "fragment_size": 2147483647,
}


def discover_request(saved: dict[str, Any], time_field: str, start: str, end: str, size: int = 500) -> dict[str, Any]:
    """What Discover sends to show a saved search: its query and sort, the time filter,
    ``size`` rows (Discover's sample size), total hits counted exactly, fields from the fields API,
    query matches highlighted."""
    request = search_request(saved, size=size)
    request["query"]["bool"]["filter"] = [time_filter(time_field, start, end)]
    for sort in request["sort"]:
        for field, spec in sort.items():
            spec.update(
                {"format": "strict_date_optional_time"} if field == time_field else {"unmapped_type": "boolean"}
            )
    # Discover breaks ties by index order, in the direction of the first sort.
    [first_order] = [spec["order"] for spec in request["sort"][0].values()]
    request["sort"].append({"_doc": {"order": first_order}})
    request.update(track_total_hits=True, _source=False, fields=[{"field": "*", "include_unmapped": True}])
    # Discover highlights query matches in every field (its default doc_table:highlight setting).
    request["highlight"] = {**HIGHLIGHT, "fields": {"*": {}}}
    request["stored_fields"] = ["*"]
    return request


def discover_chart_request(
    saved: dict[str, Any], time_field: str, start: str, end: str, seconds: float
) -> dict[str, Any]:
    """The histogram Discover draws above a saved search's rows (unless the search hides it)."""
    request = discover_request(saved, time_field, start, end)
    histogram = {"field": time_field, "fixed_interval": auto_interval(seconds), "time_zone": "UTC", "min_doc_count": 1}
    return {
        "size": 0,
        "track_total_hits": True,
        "query": request["query"],
        "aggs": {"histogram": {"date_histogram": histogram}},
    }


def lens_request(lens: dict[str, Any], time_field: str, start: str, end: str, seconds: float) -> dict[str, Any]:
    """The aggregation request for any Lens layer of terms and date histogram buckets and metrics.

    Bucket columns nest in ``columnOrder``; every metric sits in the innermost bucket. A
    terms column ordered by a metric gets that metric as its own sub-aggregation too, as
    Kibana does when the metric lies below another bucket. ``seconds`` is the length of
    the time range, which sets the interval of an "auto" date histogram.
    """
    layer = lens_layer(lens)
    columns = layer["columns"]
    metrics = {
        cid: _METRICS[c["operationType"]](c)
        for cid, c in columns.items()
        if not c["isBucketed"] and c["operationType"] != "count"  # a bucket's doc_count
    }
    aggs: dict[str, Any] = metrics
    for cid in reversed(layer["columnOrder"]):
        column = columns[cid]
        if not column["isBucketed"]:
            continue
        if column["operationType"] == "date_histogram":
            interval = column["params"]["interval"]
            histogram = {
                "field": column["sourceField"],
                "fixed_interval": auto_interval(seconds) if interval == "auto" else interval,
                "time_zone": "UTC",
            }
            if column["params"].get("includeEmptyRows"):
                histogram.update(min_doc_count=0, extended_bounds={"min": start, "max": end})
            aggs = {cid: {"date_histogram": histogram, "aggs": aggs}}
        elif column["operationType"] == "terms":
            params = column["params"]
            order_column = columns[params["orderBy"]["columnId"]]
            order_key = params["orderBy"]["columnId"]
            if order_column["operationType"] == "count":
                order_key = "_count"
            elif order_column["operationType"] == "percentile":
                order_key += f"[{order_column['params']['percentile']}]"
            sub = dict(aggs)
            if order_key != "_count":
                sub[params["orderBy"]["columnId"]] = metrics[params["orderBy"]["columnId"]]
            terms = {
                "field": column["sourceField"],
                "size": params["size"],
                "order": {order_key: params["orderDirection"]},
            }
            aggs = {cid: {"terms": terms, "aggs": sub}}
        else:
            raise AssertionError(f"bucket operation {column['operationType']} is not translated")
    query = lens["attributes"]["state"]["query"]
    assert query["language"] == "lucene"
    must = [{"query_string": {"query": query["query"]}}] if query["query"] else []
    return {
        "size": 0,
        "track_total_hits": True,
        "query": {"bool": {"must": must, "filter": [time_filter(time_field, start, end)]}},
        "aggs": aggs,
    }
