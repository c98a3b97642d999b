"""One list of fields, every reader held to it: the line format, the grok, the template mapping."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.lines import task as line
from tests.support import logstash

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
MAPPING = json.loads((REPO / "elasticsearch" / "component-templates" / "task-time-mappings.json").read_text())
# The type each kind of field takes in Elasticsearch; the timestamp becomes @timestamp.
MAPPED_TYPE = {"name": "keyword", "seconds": "double", "status": "keyword"}


def task_grok() -> logstash.Plugin:
    grok = logstash.line_grok()
    return grok


def test_grok_captures_every_field_under_its_name_in_the_written_order() -> None:
    pattern = task_grok().options["match"]["message"]
    captures = re.findall(r"([A-Z][\w-]*): %\{\w+:(\w+)(?::\w+)?\}", pattern)
    assert captures == [(field.label, field.name) for field in line.FIELDS]


def test_grok_reads_exactly_the_statuses_python_writes() -> None:
    assert task_grok().options["pattern_definitions"]["TASK_STATUS"].split("|") == list(line.STATUSES)


def test_template_maps_every_field_with_the_type_of_its_kind() -> None:
    properties = MAPPING["template"]["mappings"]["properties"]
    assert properties["@timestamp"]["type"] == "date"
    for field in line.FIELDS:
        if field.kind == "timestamp":
            continue
        assert properties[field.name]["type"] == MAPPED_TYPE[field.kind], field


def test_execution_attributes_are_the_field_names() -> None:
    names = [f for f in line.TaskRun.__dataclass_fields__]
    assert names == [field.name for field in line.FIELDS if field.kind != "timestamp"]
