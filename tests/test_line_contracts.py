"""Each field of each line defined once: ``pipeline.lines.task`` and ``pipeline.lines.queue`` bound to
the Logstash groks, the Elasticsearch mappings and the Kibana objects that read them.

A field added to a line module and forgotten anywhere else, a grok capture, a mapped field or a
Kibana column no line writes, or a status one side does not know, fails here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import kibana_objects
from pipeline.lines import queue, task
from pipeline.lines.fields import Field
from tests.support import logstash

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
# What Logstash and Elasticsearch add to every document, whatever the line: the date filter's
# result, the event's version, the unparsed line, the tags, and the file input's metadata.
ADDED_BY_THE_PIPELINE = {"@timestamp", "@version", "message", "tags", "host", "log"}
# The Elasticsearch type each kind of field is mapped as.
MAPPED_TYPE = {
    "name": "keyword",
    "status": "keyword",
    "seconds": "double",
    "seconds-or-none": "double",
    "count": "long",
    "percent": "double",
    "bool": "boolean",
    "word": "keyword",
    "text": "keyword",
    "count-or-none": "long",
    "system": "keyword",
    "broker": "keyword",
}
# How the grok converts each mapped type (none: a string).
CONVERSION = {"double": "float", "long": "int"}


@dataclass(frozen=True)
class Contract:
    """One line format and everything that reads it after Logstash."""

    fields: tuple[Field, ...]
    statuses: tuple[str, ...]
    config: str  # under logstash/pipeline/
    grok_id: str | None  # the grok reading the whole line, when the config has several
    status_pattern: str  # the grok's pattern definition of the statuses
    mapping: str  # under elasticsearch/component-templates/
    data_view: str  # the id of the Kibana data view over its indices

    def grok(self) -> logstash.Plugin:
        groks = logstash.plugins(logstash.load(REPO / "logstash" / "pipeline" / self.config)["filter"], "grok")
        [grok] = [g for g in groks if self.grok_id is None or g.options.get("id") == self.grok_id]
        return grok

    def mapped(self) -> dict[str, dict]:
        path = REPO / "elasticsearch" / "component-templates" / self.mapping
        return json.loads(path.read_text())["template"]["mappings"]["properties"]


QUEUE_FIELDS = tuple(
    dict.fromkeys(
        (
            *queue.HEAD_FIELDS,
            *queue.ORIGIN_FIELDS,
            *(field for body in queue.LINE_KINDS.values() for field in body),
            queue.REASON,
        )
    )
)
CONTRACTS = {
    "task": Contract(
        task.FIELDS,
        task.STATUSES,
        "task-time.conf",
        "task_time_line",
        "TASK_STATUS",
        "task-time-mappings.json",
        "task-time",
    ),
    "queue": Contract(
        QUEUE_FIELDS,
        queue.STATUSES,
        "queue-monitor.conf",
        None,
        "MONITOR_STATUS",
        "queue-monitor-mappings.json",
        "queue-monitor",
    ),
}
LINES = pytest.mark.parametrize("contract", CONTRACTS.values(), ids=CONTRACTS.keys())


def captures(grok: logstash.Plugin) -> list[tuple[str, str, str]]:
    """``(label, field name, conversion)`` of every capture of the grok, in pattern order."""
    pattern = grok.options["match"]["message"]
    return re.findall(r"([A-Z][\w-]*): (?:\(\?:)?%\{\w+:(\w+)(?::(\w+))?\}", pattern)


def test_every_field_name_is_defined_once_per_line() -> None:
    for contract in CONTRACTS.values():
        names = [field.name for field in contract.fields]
        labels = [field.label for field in contract.fields]
        assert len(set(names)) == len(names) and len(set(labels)) == len(labels)
        assert all(field.kind in MAPPED_TYPE or field.kind == "timestamp" for field in contract.fields)


@LINES
def test_the_grok_captures_every_field_under_its_label_and_name(contract: Contract) -> None:
    found = {(label, name) for label, name, _ in captures(contract.grok())}
    assert found == {(field.label, field.name) for field in contract.fields}


def test_the_task_grok_captures_in_the_order_the_line_is_written() -> None:
    written = [(field.label, field.name) for field in task.FIELDS]
    assert [(label, name) for label, name, _ in captures(CONTRACTS["task"].grok())] == written


@LINES
def test_the_grok_takes_exactly_the_statuses_python_writes(contract: Contract) -> None:
    definitions = contract.grok().options["pattern_definitions"]
    assert definitions[contract.status_pattern].split("|") == list(contract.statuses)


@LINES
def test_every_field_is_mapped_with_the_type_of_its_kind_and_converted_to_it(contract: Contract) -> None:
    mapped = contract.mapped()
    assert mapped["@timestamp"]["type"] == "date"
    conversions = {name: conversion for _, name, conversion in captures(contract.grok())}
    for field in contract.fields:
        if field.kind == "timestamp":  # consumed by the date filter as @timestamp
            continue
        assert mapped[field.name]["type"] == MAPPED_TYPE[field.kind], field
        assert conversions[field.name] == CONVERSION.get(MAPPED_TYPE[field.kind], ""), field


@LINES
def test_the_mapping_holds_only_line_fields_and_what_the_pipeline_adds(contract: Contract) -> None:
    line_fields = {field.name for field in contract.fields if field.kind != "timestamp"}
    assert set(contract.mapped()) == line_fields | ADDED_BY_THE_PIPELINE


@LINES
def test_every_field_a_kibana_object_reads_is_written_by_the_line(contract: Contract) -> None:
    objects = kibana_objects.objects()
    readers = kibana_objects.reading(contract.data_view, objects)
    assert readers, f"no Kibana object reads the data view {contract.data_view}"
    line_fields = {field.name for field in contract.fields if field.kind != "timestamp"}
    used: set[str] = set()
    for (kind, id_), saved in readers.items():
        fields = {name.split(".")[0] for name in kibana_objects.fields_used(saved)}  # host.name is in host
        assert fields <= line_fields | ADDED_BY_THE_PIPELINE, f"{kind}/{id_} reads {fields - line_fields}"
        used |= fields
    # The fields the views rank and filter by are the line's own, not only what the pipeline adds.
    assert used & line_fields


def test_the_field_formats_of_the_data_views_name_line_fields() -> None:
    objects = kibana_objects.objects()
    for contract in CONTRACTS.values():
        view = objects[("index-pattern", contract.data_view)]
        formatted = set(view["attributes"].get("fieldFormatMap", {}))
        assert formatted <= {field.name for field in contract.fields}, contract.data_view


def test_task_run_attributes_are_the_field_names() -> None:
    names = list(task.TaskRun.__dataclass_fields__)
    assert names == [field.name for field in task.FIELDS if field.kind != "timestamp"]


@LINES
def test_the_grok_is_anchored_at_both_ends(contract: Contract) -> None:
    pattern = contract.grok().options["match"]["message"]
    assert pattern.startswith("^") and pattern.endswith("$")


# A value of each queue-line kind, as the monitor writes it.
SAMPLE_VALUES = {
    "name": "a%20name",
    "count": 3,
    "count-or-none": 4,
    "percent": 12.5,
    "seconds": 0.25,
    "seconds-or-none": 1.5,
    "bool": True,
    "word": "unreachable",
}


def _grok_as_python(grok: logstash.Plugin) -> re.Pattern[str]:
    """The queue grok as a Python regex (captures dropped): ``%{NAME:field}`` becomes NAME's definition."""
    definitions = {"NOTSPACE": r"\S+", **grok.options["pattern_definitions"]}
    pattern = re.sub(
        r"%\{(\w+)(?::\w+)*\}", lambda m: "(?:" + definitions[m[1]] + ")", grok.options["match"]["message"]
    )
    return re.compile(pattern)


@pytest.mark.parametrize("kind", queue.LINE_KINDS)
@pytest.mark.parametrize("origin", [None, ("celery", "redis"), ("celery", "rabbitmq")])
def test_the_queue_grok_takes_every_kind_of_line_python_writes(kind: str, origin: tuple[str, str] | None) -> None:
    grok = _grok_as_python(CONTRACTS["queue"].grok())
    values = {field.name: SAMPLE_VALUES[field.kind] for field in queue.LINE_KINDS[kind]}
    text = "Time: 2026-11-22 07:30:00,012 " + queue.format_fields("m", queue.WARN, kind, values, "why", origin)
    assert grok.fullmatch(text), text
    assert queue.match_line(text.encode()) is not None
    for field in queue.LINE_KINDS[kind]:
        if field.kind.endswith("-or-none"):  # "-" for unknown is taken too
            unknown = text.replace(f"{field.label}: {queue._value(field, values[field.name])} ", f"{field.label}: - ")
            assert grok.fullmatch(unknown) and queue.match_line(unknown.encode()), unknown


def test_the_queue_grok_takes_the_errors_systems_and_brokers_python_knows() -> None:
    definitions = CONTRACTS["queue"].grok().options["pattern_definitions"]
    assert definitions["MONITOR_ERROR"].split("|") == list(queue.ERRORS)
    assert definitions["MONITOR_SYSTEM"].split("|") == list(queue.SYSTEMS)
    assert definitions["MONITOR_BROKER"].split("|") == list(queue.BROKERS)


def test_every_kind_of_queue_line_has_a_role() -> None:
    assert set(queue.ROLES) == set(queue.LINE_KINDS)
    assert set(queue.ROLES.values()) == {"broker", "queue", "error"}
