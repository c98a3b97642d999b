"""Static checks of the saved objects in kibana/<type>/<id>.json (no Kibana runs in the tests; see the README)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness import kibana_objects
from harness.es_cluster import stack_version
from pipeline.bootstrap.saved_objects import ENCODED_ATTRIBUTES, decode, encode, file_text, load_saved_objects

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
INDEX_TEMPLATES = [
    json.loads(path.read_text()) for path in sorted((REPO / "elasticsearch" / "index-templates").glob("*.json"))
]

# Per type: the oldest typeMigrationVersion we accept and the newest one Kibana 9.x
# registers, read from Kibana's sources (each type's migrations and model versions, as
# listed in its check_registered_types test) when these objects were written. Kibana
# rejects a newer version outright (HTTP 422); without one it runs every migration since
# 7.x, which breaks modern Lens objects. Saved searches in the flat (pre-"tabs") shape must
# stay below 10.0.0 so Kibana's own migration turns them into tabs.
KNOWN_TYPE_VERSIONS = {
    "index-pattern": ("8.0.0", "8.0.0"),
    "search": ("8.0.0", "9.99.99"),
    "lens": ("8.9.0", "10.1.0"),
    "dashboard": ("8.9.0", "10.3.0"),
}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def flatten(properties: dict, prefix: str = "") -> dict[str, dict]:
    fields = {}
    for name, spec in properties.items():
        if "properties" in spec:
            fields.update(flatten(spec["properties"], f"{prefix}{name}."))
        else:
            fields[f"{prefix}{name}"] = spec
    return fields


def template_for(pattern: str) -> dict:
    """The index template whose patterns include a data view's title."""
    [template] = [t for t in INDEX_TEMPLATES if pattern in t["index_patterns"]]
    return template


def mapped_fields(saved: dict) -> dict[str, dict]:
    """The fields mapped for the indices a saved object reads, from the templates' component templates."""
    template = template_for(kibana_objects.data_view(saved, OBJECTS)["attributes"]["title"])
    fields: dict[str, dict] = {}
    for name in template["composed_of"]:
        path = REPO / "elasticsearch" / "component-templates" / f"{name}.json"
        if path.exists():
            mappings = json.loads(path.read_text())["template"].get("mappings", {})
            fields.update(flatten(mappings.get("properties", {})))
    return fields


OBJECTS = kibana_objects.objects()
NUMERIC = ("double", "long")


def test_ids_are_stable_unique_and_valid() -> None:
    files = [p for p in (REPO / "kibana").glob("*/*.json") if p.parent.name != "config"]
    assert len(files) == len(OBJECTS)
    assert not (REPO / "kibana" / "saved-objects.ndjson").exists()
    for _, id_ in OBJECTS:
        assert "/" not in id_ and id_.startswith(("task-time", "queue-")), id_


def test_every_reference_resolves_to_an_object_in_the_file() -> None:
    for (type_, id_), saved in OBJECTS.items():
        names = set()
        for reference in saved["references"]:
            assert (reference["type"], reference["id"]) in OBJECTS, (id_, reference)
            names.add(reference["name"])
        if type_ == "search":
            assert kibana_objects.search_source(saved)["indexRefName"] in names
        if type_ == "lens":
            for layer_id in saved["attributes"]["state"]["datasourceStates"]["formBased"]["layers"]:
                assert f"indexpattern-datasource-layer-{layer_id}" in names
        if type_ == "dashboard":
            panels = saved["attributes"]["panelsJSON"]
            assert len(panels) == len([n for n in names if n.endswith(":panel_" + n.split(":")[0])])
            for panel in panels:
                assert panel["gridData"]["i"] == panel["panelIndex"]
                assert f"{panel['panelIndex']}:{panel['panelRefName']}" in names
                assert panel["gridData"]["x"] >= 0 and panel["gridData"]["x"] + panel["gridData"]["w"] <= 48


def test_every_field_used_exists_in_the_template_mapping() -> None:
    for (_, id_), saved in OBJECTS.items():
        if saved["type"] == "dashboard":
            continue
        fields = mapped_fields(saved)
        for field in kibana_objects.fields_used(saved):
            assert field in fields, f"{id_} uses {field}, which the template does not map"


def test_numeric_operations_use_numeric_fields_and_terms_use_keywords() -> None:
    for (type_, id_), saved in OBJECTS.items():
        if type_ != "lens":
            continue
        fields = mapped_fields(saved)
        for column in kibana_objects.lens_layer(saved)["columns"].values():
            field = column.get("sourceField")
            if column["operationType"] in ("sum", "average", "percentile", "max", "min"):
                assert fields[field]["type"] in NUMERIC, (id_, field)
            elif column["operationType"] in ("terms", "last_value"):
                assert fields[field]["type"] == "keyword", (id_, field)
            elif column["operationType"] == "date_histogram":
                assert fields[field]["type"] == "date", (id_, field)


def test_migration_versions_fit_the_stack() -> None:
    stack = _version(stack_version())
    assert stack[0] == 9
    for (type_, id_), saved in OBJECTS.items():
        assert _version(saved["coreMigrationVersion"]) <= stack, id_
        low, high = KNOWN_TYPE_VERSIONS[type_]
        assert _version(low) <= _version(saved["typeMigrationVersion"]) <= _version(high), id_
        assert saved.get("managed") is False


def test_each_data_view_covers_the_indices_of_one_template() -> None:
    views = [o for (t, _), o in OBJECTS.items() if t == "index-pattern"]
    assert {v["attributes"]["title"] for v in views} == {"task-time-*", "queue-monitor-*"}
    for view in views:
        assert view["attributes"]["timeFieldName"] == "@timestamp"
        template_for(view["attributes"]["title"])  # exactly one template maps what it reads


def test_the_issue_s_saved_searches_exist_with_their_columns_and_order() -> None:
    slowest = OBJECTS[("search", "task-time-slowest")]["attributes"]
    assert slowest["title"] == "Slowest tasks"
    # "system" tells Celery executions (System: celery) from RQ's (no System field).
    assert slowest["columns"] == ["task_name", "task_time", "queue", "status", "worker", "system"]
    assert slowest["sort"] == [["task_time", "desc"]]
    problems = OBJECTS[("search", "task-time-problems")]["attributes"]
    assert problems["title"] == "Failed, timed-out, killed and retried tasks"
    assert OBJECTS[("search", "task-time-unparsed")]["attributes"]["title"] == "Unparsed lines"


def test_dashboard_ranks_by_total_time_p95_and_count_and_charts_time() -> None:
    dashboard = OBJECTS[("dashboard", "task-time-overview")]
    panel_ids = {reference["id"] for reference in dashboard["references"]}
    ranking = kibana_objects.lens_layer(OBJECTS[("lens", "task-time-ranking")])["columns"]
    operations = {(c["operationType"], c.get("sourceField")) for c in ranking.values()}
    assert {("sum", "task_time"), ("percentile", "task_time"), ("count", "___records___")} <= operations
    assert "task-time-ranking" in panel_ids
    over_time = set()
    for id_ in panel_ids:
        if ("lens", id_) not in OBJECTS:
            continue
        columns = kibana_objects.lens_layer(OBJECTS[("lens", id_)])["columns"].values()
        if any(column["operationType"] == "date_histogram" for column in columns):
            over_time |= {column.get("sourceField") for column in columns}
    assert {"task_time", "wait_time"} <= over_time


def test_queries_are_lucene_so_tests_can_run_them_as_written() -> None:
    for (type_, id_), saved in OBJECTS.items():
        if type_ == "search":
            assert kibana_objects.search_source(saved)["query"]["language"] == "lucene", id_
        if type_ == "lens":
            assert saved["attributes"]["state"]["query"]["language"] == "lucene", id_


def test_files_are_pretty_printed_with_sorted_keys_and_no_json_inside_strings() -> None:
    for saved in load_saved_objects(REPO):
        assert saved.path.read_text(encoding="utf-8") == file_text(saved.body), saved.path
        encoded = encode(saved.body)
        for dotted in ENCODED_ATTRIBUTES.get(saved.key[0], ()):
            *parents, last = dotted.split(".")
            holder, sent = saved.body["attributes"], encoded["attributes"]
            for key in parents:
                holder, sent = holder.get(key, {}), sent.get(key, {})
            if last in holder:
                assert not isinstance(holder[last], str), (saved.path, dotted)  # readable in the file
                assert json.loads(sent[last]) == holder[last]  # and JSON text in what Kibana gets
        assert decode(encoded) == saved.body
