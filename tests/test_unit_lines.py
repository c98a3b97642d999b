"""Line round trips in pure Python: written by ``pipeline.lines``, read back by ``pipeline.lines``.

The pipeline's own reading (grok, date filter) is checked against Logstash's engines in the
``jvm`` tier; here each module is held to its own inverse.
"""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from pipeline.lines import queue as queue_line
from pipeline.lines.clock import LineClock, format_line, iso_millis
from pipeline.lines.fields import decode_name, encode_name
from pipeline.lines.task import STATUSES, TaskRun, format_fields, read_line

pytestmark = [pytest.mark.unit]

PARIS = ZoneInfo("Europe/Paris")
NAMES = ["jobs.send_mail", "", "-", "%", "a b", "tab\there", "line\nbreak", "é日本😀", "\u2028", "%2D", "x\x00y"]


def utc(*parts: int) -> float:
    return datetime.datetime(*parts, tzinfo=datetime.UTC).timestamp()


@pytest.mark.parametrize("name", NAMES)
def test_a_name_decodes_back_to_itself_from_one_printable_token(name: str) -> None:
    token = encode_name(name)
    assert token and token.isprintable() and not any(char.isspace() for char in token)
    assert decode_name(token) == name
    assert decode_name(token.encode()) == name


def test_a_missing_name_is_written_as_the_empty_name() -> None:
    assert encode_name(None) == "-"
    assert decode_name("-") == ""


def test_bytes_that_are_not_utf8_decode_to_the_replacement_character() -> None:
    assert decode_name(b"a%FFb") == "a\ufffdb"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("name", NAMES)
def test_a_task_line_reads_back_as_its_written_fields(name: str, status: str) -> None:
    run = TaskRun(name, 1.5, queue=name, status=status, wait_time=0.000125, job_id="4f1c-9", worker=name)
    stamp = utc(2026, 11, 21, 23, 48, 57) + 0.25
    line = format_line(stamp, format_fields(run))
    read = read_line(line.encode(), LineClock())
    assert read == {
        "task_name": encode_name(name),
        "task_time": 1.5,
        "queue": encode_name(name),
        "status": status,
        "wait_time": 0.000125,
        "job_id": "4f1c-9",
        "worker": encode_name(name),
        "epoch_millis": int(stamp * 1000),
        "@timestamp": "2026-11-21T23:48:57.250Z",
    }
    assert decode_name(read["task_name"]) == name  # type: ignore[arg-type]


def test_a_task_line_with_only_the_seed_fields_reads_back_without_the_others() -> None:
    line = format_line(utc(2026, 1, 2, 3, 4, 5), format_fields(TaskRun("jobs.add", 0.052571)))
    assert line == "Time: 2026-01-02 03:04:05,000 Task: jobs.add Task-time: 0.052571"
    read = read_line(line.encode(), LineClock())
    assert read is not None and set(read) == {"task_name", "task_time", "epoch_millis", "@timestamp"}
    assert (read["task_name"], read["task_time"]) == ("jobs.add", 0.052571)


def test_a_line_the_pipeline_would_not_parse_reads_as_none() -> None:
    clock = LineClock()
    good = format_line(0, format_fields(TaskRun("t", 1.0, status="finished")))
    assert read_line(good.encode(), clock) is not None
    assert read_line(good.replace("finished", "done").encode(), clock) is None
    assert read_line(good.replace("1970-01-01", "1970-02-30").encode(), clock) is None
    assert read_line((good + "\n").encode(), clock) is None
    assert read_line(b"Time: 1970-01-01 00:00:00,000 Task: t", clock) is None


@pytest.mark.parametrize("zone", [datetime.UTC, PARIS, ZoneInfo("America/New_York")])
def test_every_quarter_hour_around_both_dst_changes_reads_back_to_its_instant_or_the_first_pass(
    zone: datetime.tzinfo,
) -> None:
    clock = LineClock(zone)
    for start in (utc(2026, 3, 28, 12), utc(2026, 10, 24, 12), utc(2026, 11, 1, 0)):
        for step in range(4 * 30):
            instant = start + step * 900 + 0.125
            stamp = clock.format(instant).encode()
            seconds = clock.seconds(stamp[:19])
            wall = datetime.datetime.fromtimestamp(int(instant), zone)
            first_pass = wall.replace(tzinfo=None).replace(tzinfo=zone, fold=0).timestamp()
            assert seconds == int(first_pass), (zone, stamp)
            assert clock.millis(stamp) == int(first_pass) * 1000 + 125


def test_paris_reads_the_repeated_hour_as_its_first_pass_and_refuses_the_skipped_one() -> None:
    clock = LineClock(PARIS)
    first = utc(2026, 10, 25, 0, 30)  # 02:30 CEST
    second = utc(2026, 10, 25, 1, 30)  # 02:30 CET, an hour later
    assert clock.format(first) == clock.format(second) == "2026-10-25 02:30:00,000"
    assert clock.millis(b"2026-10-25 02:30:00,000") == int(first) * 1000
    assert clock.millis(b"2026-03-29 02:30:00,000") is None  # clocks went forward: no such wall time
    assert clock.millis(b"2026-03-29 03:30:00,000") == int(utc(2026, 3, 29, 1, 30)) * 1000


@pytest.mark.parametrize(
    ("instant", "stamp", "iso"),
    [
        (0.0, "1970-01-01 00:00:00,000", "1970-01-01T00:00:00.000Z"),
        (951_782_400.875, "2000-02-29 00:00:00,875", "2000-02-29T00:00:00.875Z"),
        (utc(2028, 2, 29, 23, 59, 59) + 0.5, "2028-02-29 23:59:59,500", "2028-02-29T23:59:59.500Z"),
    ],
)
def test_utc_reads_back_the_written_millisecond(instant: float, stamp: str, iso: str) -> None:
    clock = LineClock()
    assert clock.format(instant) == stamp
    millis = clock.millis(stamp.encode())
    assert millis == int(instant * 1000)
    assert iso_millis(millis) == iso


def test_impossible_dates_and_times_are_refused() -> None:
    clock = LineClock()
    for stamp in (b"2026-02-29 00:00:00", b"2026-13-01 00:00:00", b"2026-01-01 24:00:00", b"2026-01-01 00:00:60"):
        assert clock.seconds(stamp) is None
    assert clock.seconds(b"2028-02-29 00:00:00") == int(utc(2028, 2, 29))


QUEUE_VALUES: dict[str, object] = {
    "queue": "high prio",
    "depth": 12,
    "latency": 31.5,
    "missing": 1,
    "started": 2,
    "abandoned": 0,
    "failed": 7,
    "new_failed": 3,
    "deferred": 0,
    "scheduled": 4,
    "overdue": 1,
    "workers": 2,
    "busy": 2,
    "idle": 0,
}
REDIS_VALUES: dict[str, object] = {
    "redis": "127.0.0.1:6379/0",
    "used_memory": 1_048_576,
    "maxmemory": 2_097_152,
    "memory_used_pct": 50.0,
    "maxmemory_policy": "noeviction",
    "evicted_keys": 0,
    "oom_rejections": 5,
    "suspended": True,
    "sample_time": 0.0042,
}
ERROR_VALUES: dict[str, object] = {"redis": "127.0.0.1:6379/0", "error": "unreachable"}
WRITTEN = {
    "queue": {
        "queue": b"high%20prio",
        "depth": b"12",
        "latency": b"31.500000",
        "failed": b"7",
        "new_failed": b"3",
        "idle": b"0",
    },
    "redis": {"memory_used_pct": b"50.00", "suspended": b"true", "sample_time": b"0.004200", "oom_rejections": b"5"},
    "error": {"redis": b"127.0.0.1:6379/0", "error": b"unreachable"},
}


@pytest.mark.parametrize(
    ("kind", "values"), [("queue", QUEUE_VALUES), ("redis", REDIS_VALUES), ("error", ERROR_VALUES)]
)
def test_each_kind_of_queue_monitor_line_is_matched_as_that_kind_with_its_values(
    kind: str, values: dict[str, object]
) -> None:
    fields = queue_line.format_fields("mon a", queue_line.WARN, kind, values, reason="latency 32s > 30s;\nsecond")
    line = format_line(utc(2026, 11, 21, 23, 48, 57), fields)
    found = queue_line.match_line(line.encode())
    assert found is not None
    matched_kind, match = found
    assert matched_kind == kind
    assert match["monitor"] == b"mon%20a" and decode_name(match["monitor"]) == "mon a"
    assert match["status"] == b"warn"
    assert match["reason"] == b"latency 32s > 30s; second"
    assert {name: match[name] for name in WRITTEN[kind]} == WRITTEN[kind]
    assert LineClock().millis(match["timestamp"]) == int(utc(2026, 11, 21, 23, 48, 57)) * 1000


def test_unknown_latency_and_an_empty_reason_are_dashes() -> None:
    fields = queue_line.format_fields("m", queue_line.OK, "queue", {**QUEUE_VALUES, "latency": None})
    found = queue_line.match_line(format_line(0, fields).encode())
    assert found is not None and found[1]["latency"] == b"-" and found[1]["reason"] == b"-"


def test_a_bad_status_or_error_word_is_refused_when_written_and_a_cut_line_when_read() -> None:
    with pytest.raises(ValueError, match="status 'bad' is not one of"):
        queue_line.format_fields("m", "bad", "error", ERROR_VALUES)
    with pytest.raises(ValueError, match="is not one word"):
        queue_line.format_fields("m", queue_line.CRITICAL, "error", {**ERROR_VALUES, "error": "two words"})
    whole = format_line(0, queue_line.format_fields("m", queue_line.OK, "queue", QUEUE_VALUES))
    assert queue_line.match_line(whole.encode()) is not None
    assert queue_line.match_line(whole[: whole.index(" Idle:")].encode()) is None
