"""Pipeline stages that keep hostile input rankable and re-read lines deduplicated.

Run through the config interpreter of ``tests.support.logstash``; what Elasticsearch makes
of the resulting documents is tested on the real cluster in ``tests/test_writer_role.py``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from pipeline.lines.clock import format_line
from pipeline.lines.task import TaskRun, format_fields
from tests.support import logstash

# Elasticsearch refuses a keyword value over this many UTF-8 bytes (Lucene's term limit).
KEYWORD_LIMIT = 32766
DAY_ONE = datetime(2026, 11, 22, 8, tzinfo=UTC)
DAY_TWO = datetime(2026, 11, 25, 8, tzinfo=UTC)


@pytest.fixture(scope="module")
def pipeline() -> logstash.Pipeline:
    return logstash.Pipeline(environ={})


def hostile_names() -> dict[str, str]:
    return {
        "emoji": "\U0001f600" * 10_000,  # 40,000 bytes, written as is (printable)
        "newlines": "\n" * 11_000,  # written as 33,000 bytes of %0A
        "mixed": "a" + "\u00e9\U0001f600" * 6_000,  # a cut anywhere may fall inside a character
    }


def long_name_line(name: str) -> str:
    execution = TaskRun(name, 2.5, name, "finished", 0.1, name, name)
    return format_line(1_763_800_000.0, format_fields(execution))


@pytest.mark.jvm
@pytest.mark.parametrize("kind", list(hostile_names()))
def test_names_elasticsearch_would_refuse_are_cut_and_tagged(pipeline: logstash.Pipeline, kind: str) -> None:
    text = long_name_line(hostile_names()[kind])
    event = pipeline.run(text)
    assert event["message"] == text  # the whole line is kept
    assert "task_time_unparsed" not in event["tags"] and "task_time_name_truncated" in event["tags"]
    assert event["task_time"] == 2.5 and event["status"] == "finished"
    full = re.search(r"Task: (\S+)", text).group(1)  # type: ignore[union-attr]
    for name in ("task_name", "queue", "job_id", "worker"):
        value = event[name]
        assert len(value.encode()) <= 1024 < KEYWORD_LIMIT
        assert len(value.encode()) > 1024 - 4  # cut at the last whole character, no further
        assert full.startswith(value)


@pytest.mark.jvm
def test_ordinary_names_are_left_alone(pipeline: logstash.Pipeline) -> None:
    name = "jobs." + "x" * 1019  # exactly 1,024 bytes
    event = pipeline.run(long_name_line(name))
    assert event["task_name"] == name and "tags" not in event


@pytest.mark.unit
def test_every_name_the_grok_captures_is_capped() -> None:
    config = logstash.load()
    grok = logstash.line_grok(config)
    captured = set(re.findall(r"%\{NOTSPACE:(\w+)\}", grok.options["match"]["message"]))
    [truncate] = logstash.plugins(config["filter"], "truncate")
    assert set(truncate.options["fields"]) == captured


@pytest.mark.unit
def test_a_cut_backs_up_to_a_whole_character_as_the_truncate_plugin_does() -> None:
    # logstash-filter-truncate byteslices, then drops bytes until the last character is whole.
    assert logstash._cut_utf8("ab\U0001f600", 5) == "ab"
    assert logstash._cut_utf8("ab\U0001f600", 6) == "ab\U0001f600"
    assert logstash._cut_utf8("\u00e9", 1) == ""
    assert logstash._cut_utf8("abc", 2) == "ab"


@pytest.mark.jvm
@pytest.mark.parametrize(
    "text",
    [
        "Time: 2026-11-21 23:50:06,000 Task: jobs.x Task-time: 1.9e",  # a number it cannot read
        "Time: 2026-11-21 23:50:06,000 Task: jobs.x Task-t",  # a fragment left by a full disk
        "Time: 2026-11-21 23:50:06,000 Task: jobs.x Task-time: 1.000000 Extra: 1",
    ],
)
def test_an_unparsed_line_read_again_on_another_day_gets_the_same_index_and_id(
    pipeline: logstash.Pipeline, text: str
) -> None:
    first, again = pipeline.run(text, received=DAY_ONE), pipeline.run(text, received=DAY_TWO)
    assert "task_time_unparsed" in first["tags"]
    assert first["@metadata"]["_index"] == again["@metadata"]["_index"] == "task-time-unparsed-2026.11.21"
    assert first["@metadata"]["_id"] == again["@metadata"]["_id"]
    assert logstash.document(first) == logstash.document(again)
    assert "timestamp" not in first


@pytest.mark.jvm
def test_an_unparsed_line_in_the_writers_zone_is_filed_under_its_instant() -> None:
    text = "Time: 2026-11-21 23:50:06,000 Task: jobs.x Task-t"
    event = logstash.Pipeline(environ={"TASK_TIME_TZ": "Asia/Tokyo"}).run(text, received=DAY_TWO)
    assert event["@timestamp"] == datetime(2026, 11, 21, 14, 50, 6, tzinfo=UTC)


@pytest.mark.jvm
@pytest.mark.parametrize("text", ["no time at all", "Time: 2026-13-45 99:00:00,000 Task: jobs.x Task-time: 1", ""])
def test_an_unparsed_line_without_a_readable_time_goes_by_the_day_it_is_read(
    pipeline: logstash.Pipeline, text: str
) -> None:
    # The limit the README states: such a line read again on another day is stored twice.
    event = pipeline.run(text, received=DAY_TWO)
    assert event["@metadata"]["_index"] == "task-time-unparsed-2026.11.25"
    assert event["tags"] == ["_grokparsefailure", "task_time_unparsed"] or "_dateparsefailure" in event["tags"]
    assert "timestamp" not in event or "task_time" in event


@pytest.mark.unit
def test_the_output_silences_exactly_the_duplicate_error() -> None:
    [output] = logstash.plugins(logstash.load()["output"], "elasticsearch")
    assert output.options["action"] == "create"
    assert output.options["silence_errors_in_log"] == ["version_conflict_engine_exception"]


@pytest.mark.unit
def test_the_unparsed_line_time_is_read_with_the_line_groks_own_pattern() -> None:
    config = logstash.load()
    [prefix] = [g for g in logstash.plugins(config["filter"], "grok") if g.options["id"] == "task_time_unparsed_time"]
    line_patterns = logstash.line_grok(config).options["pattern_definitions"]
    assert prefix.options["pattern_definitions"] == {"TASK_TIMESTAMP": line_patterns["TASK_TIMESTAMP"]}
    assert logstash.line_grok(config).options["match"]["message"].startswith(prefix.options["match"]["message"])
