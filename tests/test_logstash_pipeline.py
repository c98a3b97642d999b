"""The Logstash pipeline, as written in logstash/, applied to golden lines and to real worker lines.

Logstash itself cannot run here: ``tests.support.logstash`` parses the config and applies
its grok and date stages with Logstash's own engines (Joni, Joda-Time) and its plain field
operations in Python. What this proves and what it cannot is summed up in the README
("What is verified how").
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime, timedelta
from hashlib import md5
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml
from redis import Redis
from rq import Queue

from pipeline import settings
from pipeline.lines import task as line_format
from tests import tasks
from tests.conftest import ElasticsearchTarget, bootstrap
from tests.support import golden, logstash
from tests.support.workers import read_lines, run_burst_worker, worker_env

REPO = Path(__file__).resolve().parents[1]
MAPPING = json.loads((REPO / "elasticsearch" / "component-templates" / "task-time-mappings.json").read_text())
RECEIVED = golden.RECEIVED


@pytest.fixture(scope="module")
def pipeline() -> logstash.Pipeline:
    return logstash.Pipeline(environ={})


def grok_pattern() -> str:
    grok = logstash.line_grok()
    return grok.options["match"]["message"]


@pytest.mark.jvm
@pytest.mark.parametrize("name", list(golden.PAIRS))
def test_golden_lines_become_the_golden_documents(name: str) -> None:
    """The checked-in documents are what the engines make of the lines.

    After a deliberate change: ``python -m tests.support.golden --write`` and review the diff.
    """
    produced, wanted = golden.produce(name), golden.expected(name)
    assert len(produced) == len(wanted) == len(golden.lines(name))
    for text, got, expected in zip(golden.lines(name), produced, wanted, strict=True):
        assert got == expected, text


@pytest.mark.jvm
@pytest.mark.parametrize("name", list(golden.PAIRS))
def test_every_golden_line_is_kept_parsed_or_marked(name: str) -> None:
    texts = golden.lines(name)
    for text, event in zip(texts, logstash.Pipeline(environ=golden.PAIRS[name]).run_many(texts), strict=True):
        parsed = "task_time_unparsed" not in event.get("tags", [])
        # The line itself stays only where its fields do not hold all of it.
        whole = not parsed or "task_time_name_truncated" in event.get("tags", [])
        assert event.get("message") == (text if whole else None)
        assert event["@metadata"]["_index"].startswith("task-time-" if parsed else "task-time-unparsed-")
        assert parsed == ("task_time" in event and "timestamp" not in event)


@pytest.mark.jvm
def test_local_times_in_a_dst_gap_are_kept_unparsed_and_overlaps_read_as_the_first_pass() -> None:
    """Joda refuses a wall time the zone skips; of a wall time it passes twice, it takes the earlier instant."""
    paris = logstash.Pipeline(environ={"TASK_TIME_TZ": "Europe/Paris"})
    line = "Time: {} Task: jobs.x Task-time: 1.000000"
    gap, overlap, after = paris.run_many(
        [
            line.format("2026-03-29 02:30:00,000"),
            line.format("2026-10-25 02:30:00,000"),
            line.format("2026-03-29 03:00:00,000"),
        ]
    )
    assert gap["tags"] == ["_dateparsefailure", "task_time_unparsed"] and gap["timestamp"] == "2026-03-29 02:30:00,000"
    assert gap["@metadata"]["_index"].startswith("task-time-unparsed-")
    assert overlap["@timestamp"] == datetime(2026, 10, 25, 0, 30, tzinfo=UTC)  # CEST, not CET
    assert after["@timestamp"] == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


@pytest.mark.unit
def test_grok_reads_the_labels_python_writes_in_the_same_order() -> None:
    pattern = grok_pattern()
    labels = re.findall(r"([A-Z][\w-]*): %\{", pattern)
    assert labels == [field.label for field in line_format.FIELDS]
    assert pattern.startswith("^") and pattern.endswith("$"), "the grok must be anchored at both ends"
    grok = logstash.line_grok()
    assert grok.options["pattern_definitions"]["TASK_STATUS"].split("|") == list(line_format.STATUSES)


@pytest.mark.unit
def test_every_captured_field_is_in_the_template_mapping() -> None:
    properties = MAPPING["template"]["mappings"]["properties"]
    captured = re.findall(r"%\{\w+:(\w+)(?::(\w+))?\}", grok_pattern())
    for name, conversion in captured:
        if name == "timestamp":  # consumed by the date filter, then removed
            continue
        assert name in properties, name
        if conversion == "float":
            assert properties[name]["type"] == "double"
        else:
            assert properties[name]["type"] == "keyword"


def _bad_numbers() -> list[str]:
    return [
        "1.9e",
        "1.9e-",
        "e5",
        ".5",
        "5.",
        "1,5",
        "1.5.2",
        "--1",
        "+1",
        "nan",
        "NaN",
        "inf",
        "-inf",
        "0x1f",
        "1_000",
        "\u0661",  # ARABIC-INDIC DIGIT ONE: a digit to Python, not to Logstash
    ]


@pytest.mark.jvm
@pytest.mark.parametrize("text", _bad_numbers())
def test_a_number_the_pattern_cannot_read_whole_is_never_read_as_something_else(
    pipeline: logstash.Pipeline, text: str
) -> None:
    for field_line in (f"Task-time: {text}", f"Task-time: 1.000000 Queue: q Status: finished Wait-time: {text}"):
        event = pipeline.run(f"Time: 2026-11-21 23:48:57,244 Task: jobs.x {field_line}", received=RECEIVED)
        assert "task_time_unparsed" in event["tags"], (text, event)
        assert "task_time" not in event and "wait_time" not in event


@pytest.mark.jvm
def test_numbers_python_writes_are_read_exactly(pipeline: logstash.Pipeline) -> None:
    rng = random.Random(7)
    # 1e15 is SECONDS_LIMIT: beyond it a line is unparsed (tests/test_report_hardening.py).
    values = [0.0, 1e-7, 1.9e-06, 5e-324, 123456789.123456, 1e15, -1e15, -0.002] + [
        rng.uniform(0, 10) ** rng.choice([1, 3, -3]) for _ in range(300)
    ]
    written = [text for value in values for text in (str(value), line_format.format_seconds(value), str(int(value)))]
    events = pipeline.run_many([f"Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: {text}" for text in written])
    for text, event in zip(written, events, strict=True):
        assert event.get("task_time") == float(text), (text, event.get("tags"))


@pytest.mark.jvm
def test_a_line_with_a_carriage_return_is_kept_unparsed(pipeline: logstash.Pipeline) -> None:
    text = "Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: 1.000000\r"
    event = pipeline.run(text, received=RECEIVED)
    assert event["message"] == text and "task_time_unparsed" in event["tags"]


@pytest.mark.redis
@pytest.mark.jvm
def test_lines_from_real_workers_parse_into_the_jobs_facts(
    pipeline: logstash.Pipeline, redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "task-time.log"
    queue_name = "queue with spaces\nand unicode ünï"
    queue = Queue(queue_name, connection=redis)
    jobs = {
        "finished": queue.enqueue(tasks.sleep_for, 0.2),
        "failed": queue.enqueue(tasks.fail, "boom"),
        "timeout": queue.enqueue(tasks.sleep_for, 5, job_timeout=1),
        "killed": queue.enqueue(tasks.kill_own_horse, 0.1),
        "nasty": queue.enqueue(f"tests.tasks.{tasks.NASTY_NAMES[1]}"),
        "unicode": queue.enqueue(tasks.envoyer_déjà_vu),
    }
    started = datetime.now(UTC)
    done = run_burst_worker(redis_url, log, queues=[queue_name], name="parse me\tplease")
    ended = datetime.now(UTC)
    assert done.returncode == 0, done.stderr
    written = read_lines(log)
    assert len(written) == len(jobs)
    events = {}
    for text, event in zip(written, pipeline.run_many(written, received=RECEIVED), strict=True):
        assert "tags" not in event, (text, event)
        events[event["job_id"]] = event
    for label, job in jobs.items():
        event = events[job.id]
        assert event["status"] == (label if label in line_format.STATUSES else "finished")
        assert unquote(event["task_name"]) == job.func_name
        assert unquote(event["queue"]) == queue_name
        assert unquote(event["worker"]) == "parse me\tplease"
        assert isinstance(event["task_time"], float) and isinstance(event["wait_time"], float)
        assert started - timedelta(seconds=1) <= event["@timestamp"] <= ended + timedelta(seconds=1)
        assert event["@metadata"]["_index"] == f"task-time-{event['@timestamp']:%Y.%m.%d}"
    assert events[jobs["finished"].id]["task_time"] >= 0.2
    assert 1.0 <= events[jobs["timeout"].id]["task_time"] < 2.0


@pytest.mark.redis
@pytest.mark.jvm
def test_worker_and_logstash_agree_on_the_configured_zone(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    Queue("default", connection=redis).enqueue(tasks.no_op)
    zone = {"TASK_TIME_TZ": "America/St_Johns"}  # UTC-3:30 or -2:30: no whole-hour accident
    before = datetime.now(UTC)
    run_burst_worker(redis_url, log, env=worker_env(log, **zone))
    after = datetime.now(UTC)
    [text] = read_lines(log)
    event = logstash.Pipeline(environ=zone).run(text)
    assert before - timedelta(milliseconds=1) <= event["@timestamp"] <= after
    utc_reading = logstash.Pipeline(environ={}).run(text)  # the wrong zone gives the wrong instant
    assert abs(utc_reading["@timestamp"] - event["@timestamp"]) >= timedelta(hours=2)


@pytest.mark.unit
def test_file_input_reads_where_the_worker_writes_and_keeps_its_place() -> None:
    [file_input] = logstash.plugins(logstash.load()["input"], "file")
    options = file_input.options
    paths = [logstash.substitute(path, {}) for path in options["path"]]
    folder, name = settings.TASK_LOG.default.rsplit("/", 1)
    assert any(Path(path).parent == Path(folder) and Path(name).match(Path(path).name) for path in paths)
    assert any(Path(f"{name}.1").match(Path(path).name) for path in paths), "rotated files must still be read"
    assert options["start_position"] == "beginning"
    assert options["sincedb_path"].startswith("/usr/share/logstash/data/")
    assert "*.gz" in options["exclude"]


@pytest.mark.jvm
def test_output_names_the_daily_index_from_the_event_time_and_the_id_from_the_line(
    pipeline: logstash.Pipeline,
) -> None:
    parsed_line = "Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: 1.000000"
    paris_line = "Time: 2026-11-22 00:30:00,000 Task: jobs.x Task-time: 1.000000"  # 23:30 UTC the day before
    unparsed_line = "Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: soon"
    timeless_line = "Traceback (most recent call last):"
    lines = [parsed_line, parsed_line, unparsed_line, timeless_line]
    parsed, again, unparsed, timeless = pipeline.run_many(lines, received=RECEIVED)
    assert parsed["@metadata"]["_index"] == "task-time-2026.11.21"
    assert unparsed["@metadata"]["_index"] == "task-time-unparsed-2026.11.21"  # the time it starts with
    assert timeless["@metadata"]["_index"] == "task-time-unparsed-2026.11.22"  # no time: the day it was read
    assert parsed["@metadata"]["_id"] == again["@metadata"]["_id"] == md5(parsed_line.encode()).hexdigest()
    assert unparsed["@metadata"]["_id"] != parsed["@metadata"]["_id"]
    [paris] = logstash.Pipeline(environ={"TASK_TIME_TZ": "Europe/Paris"}).run_many([paris_line])
    assert paris["@metadata"]["_index"] == "task-time-2026.11.21"  # days are UTC days, as Logstash's %{+...}


@pytest.mark.unit
def test_the_output_needs_the_writer_password_from_the_environment() -> None:
    [output] = logstash.plugins(logstash.load()["output"], "elasticsearch")
    with pytest.raises(KeyError, match="LOGSTASH_WRITER_PASSWORD"):
        logstash.substitute(output.options["password"], {})
    assert logstash.substitute(output.options["password"], {"LOGSTASH_WRITER_PASSWORD": "s3"}) == "s3"


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_routed_lines_land_in_templated_indices_once_on_the_real_cluster(
    es: ElasticsearchTarget, pipeline: logstash.Pipeline
) -> None:
    """What the output sends, sent as it sends it: both indices get the template; a line read twice is stored once."""
    assert bootstrap(es, "--skip-kibana").returncode == 0
    [output] = logstash.plugins(logstash.load()["output"], "elasticsearch")
    texts = golden.lines("task-time")
    events = pipeline.run_many([*texts, texts[4]], received=RECEIVED)  # the fifth line read a second time
    operations: list[dict] = []
    for event in events:
        metadata = event["@metadata"]
        operations += [{output.options["action"]: {"_index": metadata["_index"], "_id": metadata["_id"]}}]
        operations += [logstash.document(event)]
    client = es.client()
    response = client.bulk(operations=operations, refresh="wait_for")
    statuses = [item[output.options["action"]]["status"] for item in response["items"]]
    assert statuses[-1] == 409 and set(statuses[:-1]) == {201}, response["items"][-1]
    indices = client.indices.get_mapping(index="task-time-*")
    routed = {event["@metadata"]["_index"] for event in events}
    assert set(indices) == routed and any(name.startswith("task-time-unparsed-") for name in routed)
    for name, mapping in indices.items():  # the index template matched each index by its name
        assert mapping["mappings"]["properties"]["task_time"] == {"type": "double"}, name
    assert client.count(index="task-time-*")["count"] == len(texts)
    unparsed = client.count(index="task-time-unparsed-*", query={"term": {"tags": "task_time_unparsed"}})["count"]
    assert unparsed == sum("task_time_unparsed" in event.get("tags", []) for event in events[:-1]) > 0


@pytest.mark.unit
def test_logstash_settings_keep_events_through_outages() -> None:
    settings = yaml.safe_load((REPO / "logstash" / "config" / "logstash.yml").read_text())
    assert settings["queue.type"] == "persisted"
    assert settings["dead_letter_queue.enable"] is True
