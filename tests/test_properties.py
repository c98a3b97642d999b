"""Properties of the line ``pipeline.lines.task`` writes, read by the pipeline with Logstash's engines.

Any names, any seconds, any instant or wall time in any zone both Python and Joda-Time
know: the grok (Joni) reads back exactly the encoded fields and the numbers to 1 µs, the
date filter (Joda-Time) the instant to the millisecond, or, for a wall time the zone
skips (a DST gap), the line is kept and marked unparsed. Each example is one batch of lines,
sent to the engine helper in one call.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta, tzinfo
from decimal import Decimal
from urllib.parse import unquote
from zoneinfo import ZoneInfo, available_timezones

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.engines import engines
from pipeline.lines import task as line
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import encode_name
from pipeline.lines.task import read_line
from tests.support import logstash

pytestmark = [pytest.mark.jvm]

EXAMPLES = settings(max_examples=60, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
FIRST, LAST = 0, int(datetime(2040, 1, 1, tzinfo=UTC).timestamp())  # LineClock writes times from the epoch on


def write_line(
    timestamp: float,
    tz: tzinfo,
    task: str | None,
    seconds: float,
    queue: str | None = None,
    status: str | None = None,
    wait: float | None = None,
    job: str | None = None,
    worker: str | None = None,
) -> str:
    """The line ``pipeline.lines.task`` writes for one execution (the only place these tests build lines)."""
    execution = line.TaskRun(task, seconds, queue, status, wait, job, worker)
    return format_line(timestamp, line.format_fields(execution), LineClock(tz))


# Any Unicode, surrogates and control characters included; now and then very long.
names = st.one_of(
    st.text(st.characters(exclude_categories=())),
    st.text(st.sampled_from("%- \t\n\r\x00\x85\u2028é日😀"), max_size=8),
    st.text(min_size=1, max_size=4).map(lambda text: text * 2000),
)
seconds = st.one_of(st.sampled_from([0.0, 5e-324, 1e-7, 4.9999e-7, 5e-7, 1e7]), st.floats(0, 1e7))
executions = st.fixed_dictionaries(
    {"task": names, "seconds": seconds},
    optional={
        "queue": names,
        "status": st.sampled_from(line.STATUSES),
        "wait": st.floats(-1e7, 1e7),
        "job": names,
        "worker": names,
    },
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
FIELDS = {"task": "task_name", "queue": "queue", "job": "job_id", "worker": "worker"}
# Names Elasticsearch could not index are cut by the pipeline's truncate filter, and tagged.
[TRUNCATE] = logstash.plugins(logstash.load()["filter"], "truncate")
NAME_LIMIT = TRUNCATE.options["length_bytes"]


def as_stored(token: str) -> str:
    """An encoded name as the pipeline stores it: at most NAME_LIMIT UTF-8 bytes, whole characters."""
    return token.encode()[:NAME_LIMIT].decode("utf-8", "ignore")


@EXAMPLES
@given(st.lists(executions, min_size=1, max_size=25), st.floats(FIRST, LAST))
def test_any_execution_is_read_back_as_its_encoded_fields(batch: list[dict], timestamp: float) -> None:
    texts = [write_line(timestamp, UTC, **execution) for execution in batch]
    events = logstash.Pipeline(environ={}).run_many(texts)
    for execution, text, event in zip(batch, texts, events, strict=True):
        tokens = {key: encode_name(execution[key]) for key in FIELDS if key in execution}
        cut = any(len(token.encode()) > NAME_LIMIT for token in tokens.values())
        assert event.get("tags", []) == (TRUNCATE.options["add_tag"] if cut else []), text
        for key, field in FIELDS.items():
            if key in tokens:
                assert event[field] == as_stored(tokens[key])
                if not cut:
                    assert unquote(event[field], errors="surrogatepass") == (execution[key] or "-")
            else:
                assert field not in event
        assert event.get("status") == execution.get("status")
        assert abs(event["task_time"] - execution["seconds"]) <= 5e-7 + 1e-9
        if "wait" in execution:
            assert abs(event["wait_time"] - execution["wait"]) <= 5e-7 + 1e-9
        else:
            assert "wait_time" not in event
        assert_within_the_millisecond(timestamp, event["@timestamp"])


def assert_within_the_millisecond(timestamp: float, read: datetime) -> None:
    """The line keeps the time to the millisecond, cut (not rounded) as logging's asctime does."""
    behind = Decimal(timestamp) - Decimal((read - EPOCH) // timedelta(milliseconds=1)) / 1000
    assert Decimal("-1e-9") <= behind < Decimal("0.001"), (timestamp, read)


def assert_report_agrees(text: str, event: dict, clock: LineClock) -> None:
    """``python -m pipeline.report`` keeps or refuses the line as the pipeline does, at the same instant."""
    reading = read_line(text.encode(), clock)
    if "task_time_unparsed" in event.get("tags", []):
        assert reading is None, text
    else:
        assert reading is not None and reading["@timestamp"] == logstash.document(event)["@timestamp"], text


def wall_time(text: str) -> datetime:
    """The line's ``Time:`` as a naive datetime (the test's own reading, for the expectation)."""
    return datetime.strptime(text[len("Time: ") : len("Time: 2026-11-21 23:48:57,244")], "%Y-%m-%d %H:%M:%S,%f")


@functools.cache
def common_zones() -> list[str]:
    """Exact IANA names both Python's zoneinfo and Joda-Time know (TASK_TIME_TZ must suit both)."""
    return sorted(available_timezones() & set(engines().zones()))


@functools.cache
def transitions(name: str) -> list[int]:
    """Epoch seconds at which the zone's UTC offset changes, 1970-2040."""
    zone = ZoneInfo(name)

    def offset(second: int) -> timedelta | None:
        return datetime.fromtimestamp(second, zone).utcoffset()

    found, step = [], 7 * 86400  # no zone changes its offset twice within a week
    for start in range(FIRST, LAST, step):
        if offset(start) != offset(start + step):
            low, high = start, start + step
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            found.append(high)
    return found


@st.composite
def zone_and_moments(draw: st.DrawFn) -> tuple[str, list[float]]:
    """A zone and epoch seconds, most of them within hours of one of its offset changes."""
    name = draw(st.sampled_from(common_zones()))
    changes = transitions(name)
    near = st.builds(
        lambda change, delta: max(FIRST, change + delta),
        st.sampled_from(changes or [LAST // 2]),
        st.floats(-3 * 3600, 3 * 3600),
    )
    return name, draw(st.lists(st.one_of(near, near, st.floats(FIRST, LAST)), min_size=1, max_size=25))


@EXAMPLES
@given(zone_and_moments())
def test_any_instant_written_in_a_zone_is_read_back_or_as_the_first_pass_of_a_repeated_hour(
    case: tuple[str, list[float]],
) -> None:
    name, moments = case
    zone = ZoneInfo(name)
    texts = [write_line(m, zone, "t", 1.0) for m in moments]
    events = logstash.Pipeline(environ={"TASK_TIME_TZ": name}).run_many(texts)
    clock = LineClock(zone)
    for timestamp, text, event in zip(moments, texts, events, strict=True):
        assert "tags" not in event, (name, text)
        assert_report_agrees(text, event, clock)
        wall = wall_time(text).replace(tzinfo=zone)
        # A wall time the zone passes twice (clocks going back) is read as its first pass.
        assert event["@timestamp"] == wall.replace(fold=0).astimezone(UTC), (name, text)
        if wall.replace(fold=1).utcoffset() == wall.replace(fold=0).utcoffset():  # passed once: read back exactly
            assert_within_the_millisecond(timestamp, event["@timestamp"])


@EXAMPLES
@given(zone_and_moments())
def test_any_wall_time_is_read_in_the_zone_or_kept_unparsed_when_the_zone_skips_it(
    case: tuple[str, list[float]],
) -> None:
    """Lines whose time another writer (other zone data, a clock set by hand) wrote as these wall times."""
    name, moments = case
    zone = ZoneInfo(name)
    texts = [write_line(m, UTC, "t", 1.0) for m in moments]  # the UTC clock writes these seconds as the wall time
    events = logstash.Pipeline(environ={"TASK_TIME_TZ": name}).run_many(texts)
    clock = LineClock(zone)
    for text, event in zip(texts, events, strict=True):
        assert_report_agrees(text, event, clock)
        wall = wall_time(text)
        local = wall.replace(tzinfo=zone)
        exists = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) == wall
        if exists:
            assert "tags" not in event, (name, text)
            assert event["@timestamp"] == local.astimezone(UTC), (name, text)
        else:
            assert event["tags"] == ["_dateparsefailure", "task_time_unparsed"], (name, text)
            assert event["message"] == text and event["@metadata"]["_index"].startswith("task-time-unparsed-")
