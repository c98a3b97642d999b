"""Issue 16: a Task-time or Wait-time beyond SECONDS_LIMIT (infinity included) is unparsed in the
Logstash pipeline and in the report alike: checked on the engines' oracle (Joni grok, Joda dates)
through the config interpreter, which models Logstash's numeric comparisons and their failure on
a missing field.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from pipeline.lines import queue as monitor_line
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import SECONDS_LIMIT
from pipeline.lines.task import read_line
from pipeline.report.queues import QueueLines
from pipeline.report.reader import Tally
from tests.support import golden, logstash
from tests.support.logstash import ConditionError, _holds, document
from tests.support.logstash_config import Conditional, load
from tests.support.monitor import QUEUE_VALUES

pytestmark = [pytest.mark.jvm]

REPO = Path(__file__).resolve().parents[1]
STAMP = "Time: 2026-11-21 23:48:57,244"
LIMIT = f"{SECONDS_LIMIT:.0f}"
TAKEN = [LIMIT, f"-{LIMIT}", f"{LIMIT}.000000", "1e15", "1E+15", "-1e15", "999999999999999.999999", "1e-400", "0"]
REFUSED = ["1000000000000001", "1.0000000000000002e15", "1e16", "1e22", "1e308", "1e309", "1e999", "-1e999"]
REFUSED += ["-1000000000000000.5", "9" * 400]


def lines() -> list[str]:
    texts = []
    for value in TAKEN + REFUSED:
        texts.append(f"{STAMP} Task: jobs.x Task-time: {value}")
        texts.append(f"{STAMP} Task: jobs.x Task-time: {value} Queue: q Status: finished Job: j Worker: w")
        texts.append(f"{STAMP} Task: jobs.x Task-time: 1.000000 Queue: q Status: failed Wait-time: {value} Job: j")
        texts.append(f"{STAMP} Task: jobs.x Task-time: {value} Wait-time: {value}")
    # Beyond the limit and a time the date filter refuses: unparsed either way, never Infinity in a document.
    texts.append("Time: 2026-13-45 25:61:00,000 Task: jobs.x Task-time: 1e999")
    texts.append("Time: 2026-13-45 25:61:00,000 Task: jobs.x Task-time: 1.0 Wait-time: 1e999")
    return texts


def in_range(text: str) -> bool:
    return all(-SECONDS_LIMIT <= float(value) <= SECONDS_LIMIT for value in re.findall(r"-time: (\S+)", text))


@pytest.fixture(scope="module")
def events() -> list[dict]:
    return logstash.Pipeline(environ={}).run_many(lines(), received=golden.RECEIVED)


def test_the_pipeline_keeps_lines_beyond_the_limit_unparsed_with_their_time(events: list[dict]) -> None:
    for text, event in zip(lines(), events, strict=True):
        tags = event.get("tags", [])
        parsed = "task_time_unparsed" not in tags
        date_ok = not text.startswith("Time: 2026-13")
        assert parsed == (in_range(text) and date_ok), (text, tags)
        assert ("task_time_out_of_range" in tags) == (not in_range(text)), (text, tags)
        if not in_range(text):
            assert "task_time" not in event and "wait_time" not in event
            assert event["message"] == text
            assert event["@metadata"]["_index"].startswith("task-time-unparsed-")
            if date_ok:  # filed under the day of its Time:, as other unparsed lines with a readable time
                assert event["@metadata"]["_index"] == "task-time-unparsed-2026.11.21"
        # What Elasticsearch is sent is strict JSON: no Infinity, no NaN.
        json.dumps(document(event), allow_nan=False, default=str)


def test_the_report_and_read_line_take_exactly_the_lines_the_pipeline_parses(events: list[dict]) -> None:
    for text, event in zip(lines(), events, strict=True):
        parsed = "task_time_unparsed" not in event.get("tags", [])
        tally = Tally()
        tally.feed(text.encode() + b"\n", "x", 1)
        assert (tally.parsed, tally.unparsed) == ((1, 0) if parsed else (0, 1)), text
        fields = read_line(text.encode(), LineClock())
        assert (fields is not None) == parsed, text
        if parsed:
            assert fields["task_time"] == event["task_time"] and fields.get("wait_time") == event.get("wait_time")


def test_the_config_limit_is_seconds_limit_both_ways_for_both_fields() -> None:
    [check] = [
        item
        for item in load()["filter"]
        if isinstance(item, Conditional) and "task_time_out_of_range" in json.dumps(repr(item.branches))
    ]
    [(condition, _)] = check.branches
    numbers = re.findall(r"(-?[0-9]+) ", condition + " ")
    assert sorted({int(n) for n in numbers}) == [-int(SECONDS_LIMIT), int(SECONDS_LIMIT)]
    assert condition.count("[task_time] >") == condition.count("[wait_time] >") == 1


def test_the_interpreter_fails_like_logstash_on_comparing_a_missing_field() -> None:
    """Why the config tests each field for presence first: Logstash throws, it does not answer false."""
    with pytest.raises(ConditionError):
        _holds("[wait_time] > 1000000000000000", {"task_time": 1.0})
    assert not _holds("[wait_time] and ([wait_time] > 1000000000000000)", {"task_time": 1.0})
    with pytest.raises(NotImplementedError):
        _holds("[a] and [b] or [c]", {})  # precedence not modelled: refused, not guessed


def test_the_golden_documents_are_unchanged() -> None:
    for name in golden.PAIRS:
        assert golden.produce(name) == golden.expected(name)


def test_monitor_figures_beyond_the_limit_are_unparsed_in_the_monitor_pipeline_and_the_report() -> None:
    def line(kind: str, values: dict) -> str:
        return format_line(1.8e9, monitor_line.format_fields("m.1", "ok", kind, values), LineClock())

    queue = line("queue", {**QUEUE_VALUES, "queue": "q", "latency": 1.0})
    redis_values = {"redis": "r:6379/0", "used_memory": 1, "maxmemory": 2, "memory_used_pct": 50.0}
    redis_values |= {"maxmemory_policy": "noeviction", "evicted_keys": 0, "oom_rejections": 0, "suspended": False}
    redis = line("redis", {**redis_values, "sample_time": 0.001})
    texts = [queue, redis, line("queue", {**QUEUE_VALUES, "queue": "q", "latency": None})]
    for value in (LIMIT + ".0", "1000000000000000.5", "1" + "0" * 20 + ".0", "9" * 400 + ".0"):
        texts.append(queue.replace("Latency: 1.000000", f"Latency: {value}"))
        texts.append(redis.replace("Sample-time: 0.001000", f"Sample-time: {value}"))
        texts.append(redis.replace("Memory-used: 50.00", f"Memory-used: {value}"))
    config = REPO / "logstash" / "pipeline" / "queue-monitor.conf"
    events = logstash.Pipeline(config, environ={}).run_many(texts, received=golden.RECEIVED)
    reader = QueueLines(LineClock())
    for text, event in zip(texts, events, strict=True):
        tags = event.get("tags", [])
        parsed = "queue_monitor_unparsed" not in tags
        within = all(
            float(v) <= SECONDS_LIMIT for v in re.findall(r"(?:Latency|Sample-time|Memory-used): ([0-9.]+)", text)
        )
        assert parsed == within, (text[:120], tags)
        assert ("queue_monitor_out_of_range" in tags) == (not within)
        assert reader.offer(text.encode()) == parsed, text[:120]
        json.dumps(document(event), allow_nan=False, default=str)
        if not within:
            assert event["@metadata"]["_index"] == "queue-monitor-unparsed-2027.01.15"
