"""The report reads lines exactly as the Logstash pipeline does, and computes exact percentiles.

Every comparison runs the pipeline itself (``tests.support.logstash.Pipeline``, the config
in logstash/) beside the report's reading of the same line.
"""

from __future__ import annotations

import math
import random
import statistics
from datetime import UTC
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from harness.engines import engines
from pipeline.lines import clock
from pipeline.lines import fields as line_fields
from pipeline.lines import task as line_format
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import decode_name
from pipeline.lines.task import FIELDS, TaskRun, format_fields, read_line
from pipeline.report import stats
from pipeline.report.reader import Tally
from pipeline.report.stats import BAND_MINIMUM, Samples, task_rows
from tests.support import logstash
from tests.test_line_format import random_names
from tests.test_logstash_pipeline import _bad_numbers

GOLDEN = Path(__file__).resolve().parent / "golden" / "task-time.log"
VALUE_FIELDS = tuple(field.name for field in FIELDS if field.name != "timestamp")


def golden_lines() -> list[str]:
    return GOLDEN.read_text(encoding="utf-8").split("\n")[:-1]


def pipeline_reading(pipeline: logstash.Pipeline, text: str) -> dict[str, object] | None:
    """The pipeline's fields of one line, or None when it keeps the line unparsed."""
    event = pipeline.run(text)
    if "task_time_unparsed" in event.get("tags", []):
        return None
    fields: dict[str, object] = {name: event[name] for name in VALUE_FIELDS if name in event}
    fields["@timestamp"] = logstash.document(event)["@timestamp"]
    return fields


def report_reading(text: str, environ: dict[str, str]) -> dict[str, object] | None:
    fields = read_line(text.encode("utf-8"), LineClock(clock.timezone_from_env(environ)))
    if fields is not None:
        fields.pop("epoch_millis")
    return fields


def assert_same_reading(lines: list[str], environ: dict[str, str]) -> None:
    pipeline = logstash.Pipeline(environ=environ)
    for text in lines:
        expected = pipeline_reading(pipeline, text)
        got = report_reading(text, environ)
        assert got == expected, text
        if got is not None:  # the same numbers, as 64-bit floats, not just equal-looking ones
            for name in ("task_time", "wait_time"):
                assert type(got.get(name)) is type(expected.get(name)), (name, text)  # type: ignore[union-attr]


def whole_file_reading(lines: list[str], environ: dict[str, str]) -> Tally:
    tally = Tally(clock=LineClock(clock.timezone_from_env(environ)), keep_unparsed=len(lines))
    tally.feed(("\n".join(lines) + "\n").encode("utf-8"), "golden", 1)
    return tally


@pytest.mark.jvm
def test_golden_lines_are_read_as_the_pipeline_reads_them() -> None:
    assert_same_reading(golden_lines(), {})


@pytest.mark.jvm
def test_the_chunk_scan_decides_like_the_pipeline_for_golden_lines() -> None:
    lines = golden_lines()
    pipeline = logstash.Pipeline(environ={})
    tally = whole_file_reading(lines, {})
    refused = [text for text in lines if pipeline_reading(pipeline, text) is None]
    assert tally.lines == len(lines)
    assert tally.parsed == len(lines) - len(refused) and tally.unparsed == len(refused)
    assert [sample.text for sample in tally.unparsed_samples] == refused  # in line order, nothing lost
    numbers = [number for number, text in enumerate(lines, 1) if text in refused]
    assert [sample.number for sample in tally.unparsed_samples] == numbers


def _mutations(rng: random.Random, text: str) -> list[str]:
    """Near misses of a valid line: whitespace, case, order and digit changes the grok must judge."""
    variants = []
    for _ in range(6):
        position = rng.randrange(len(text) + 1)
        insert = rng.choice([" ", "\t", "\r", "\x0b", "\x0c", "x", "0", ":", "-", "é", "\u00a0", "\u0661"])
        variants.append(text[:position] + insert + text[position:])
        position = rng.randrange(len(text))
        variants.append(text[:position] + text[position + 1 :])
    variants.append(text.replace("Status: finished", "Status: Finished"))
    variants.append(text.replace(" Queue: ", "  Queue: "))
    return variants


@pytest.mark.jvm
def test_near_misses_of_real_lines_are_decided_like_the_pipeline() -> None:
    rng = random.Random(3)
    clock = LineClock()
    lines = []
    for index in range(150):
        execution = TaskRun(
            rng.choice(["jobs.a", "send mail", "é"]),
            rng.uniform(0, 5),
            rng.choice([None, "default", "q q"]),
            rng.choice([None, *line_format.STATUSES]),
            rng.choice([None, rng.uniform(-1, 9)]),
            rng.choice([None, "job-1"]),
            rng.choice([None, "w.1"]),
        )
        valid = format_line(1_795_000_000 + index * 7919.37, format_fields(execution), clock)
        lines += [valid, *_mutations(rng, valid)]
    assert_same_reading(lines, {})


@pytest.mark.jvm
@pytest.mark.parametrize("text", _bad_numbers())
def test_numbers_the_grok_cannot_read_whole_are_refused_like_the_pipeline(text: str) -> None:
    lines = [
        f"Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: {text}",
        f"Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: 1.000000 Queue: q Status: finished Wait-time: {text}",
    ]
    assert_same_reading(lines, {})
    assert all(report_reading(line, {}) is None for line in lines)


@pytest.mark.jvm
def test_numbers_python_writes_are_the_same_floats() -> None:
    rng = random.Random(7)
    values = [0.0, 1e-7, 1.9e-06, 5e-324, 123456789.123456, 1e22, -0.002, 1e308] + [
        rng.uniform(0, 10) ** rng.choice([1, 3, -3]) for _ in range(200)
    ]
    lines = [
        f"Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: {written} Wait-time: {written}"
        for value in values
        for written in (str(value), line_format.format_seconds(value), str(int(value)))
    ]
    assert_same_reading(lines, {})


@pytest.mark.jvm
def test_impossible_dates_are_unparsed_like_the_pipeline() -> None:
    days = ["2026-02-29", "2024-02-29", "2100-02-29", "2000-02-29", "2026-04-31", "2026-12-31", "2026-00-01"]
    times = ["00:00:00,000", "23:59:59,999", "24:00:00,000", "23:60:00,000", "23:59:60,000"]
    lines = [f"Time: {day} {time} Task: jobs.x Task-time: 1" for day in days for time in times]
    assert_same_reading(lines, {})
    accepted = {line[6:29] for line in lines if report_reading(line, {}) is not None}
    assert "2024-02-29 00:00:00,000" in accepted and "2000-02-29 23:59:59,999" in accepted
    assert not any(day in stamp for stamp in accepted for day in ("2026-02-29", "2100-02-29", "2026-04-31"))


# Local times around the 2026 transitions: skipped ones (a DST gap, which Joda refuses and
# the pipeline keeps unparsed), repeated ones (read as their first pass), and the edges of
# the years a line can hold. The pipeline reads them with Logstash's date library.
ZONE_LINES = [
    "2026-03-29 01:59:59,999",  # Paris, just before the clocks go forward
    "2026-03-29 02:30:00,000",  # Paris, skipped
    "2026-03-29 03:00:00,000",  # Paris, just after
    "2026-10-25 02:30:00,500",  # Paris, twice: the earlier (summer time) instant
    "2026-10-25 01:59:59,999",
    "2026-10-25 03:00:00,000",
    "2026-11-01 01:30:00,000",  # St. John's and New York, twice
    "2026-03-08 01:59:00,000",
    "2026-03-08 02:30:00,000",  # St. John's and New York, skipped
    "2026-07-01 12:00:00,000",
    "2026-12-31 23:59:59,999",
    "2024-02-29 00:00:00,000",
    "9999-12-30 12:00:00,000",  # the last day a line can hold is a day later in UTC in some zones
]


@pytest.mark.jvm
@pytest.mark.parametrize("zone", ["Europe/Paris", "America/St_Johns", "America/New_York", "UTC"])
def test_times_in_a_zone_with_daylight_saving_are_decided_and_read_as_the_pipeline_does(zone: str) -> None:
    lines = [f"Time: {stamp} Task: jobs.x Task-time: 1.5" for stamp in ZONE_LINES]
    assert_same_reading(lines, {"TASK_TIME_TZ": zone})
    tally = whole_file_reading(lines, {"TASK_TIME_TZ": zone})
    accepted = [text for text in lines if report_reading(text, {"TASK_TIME_TZ": zone}) is not None]
    assert tally.parsed == len(accepted) and tally.unparsed == len(lines) - len(accepted)
    if zone != "UTC":
        assert tally.unparsed >= 1  # each of these zones skips one of the times


@pytest.mark.jvm
def test_the_first_year_a_line_can_hold_is_read_as_joda_reads_it() -> None:
    """Year 0000: Joda reads it, Python's datetime (and so the pipeline interpreter) cannot hold it."""
    engine = engines()
    date = engine.date(["yyyy-MM-dd HH:mm:ss,SSS"], "UTC")
    stamps = ["0000-01-01 00:00:00,000", "0000-02-29 12:00:00,001", "0001-01-01 00:00:00,000"]
    joda = engine.parse(date, stamps)
    for stamp, millis in zip(stamps, joda, strict=True):
        fields = read_line(f"Time: {stamp} Task: jobs.x Task-time: 1".encode(), LineClock(ZoneInfo("UTC")))
        assert fields is not None and fields["epoch_millis"] == millis, stamp


@pytest.mark.unit
@pytest.mark.parametrize("name", [*random_names(300), "", "-", "%2D", "100%", "a%41"])
def test_names_are_decoded_exactly(name: str) -> None:
    assert decode_name(line_fields.encode_name(name).encode("utf-8")) == name


@pytest.mark.unit
def test_hand_written_spellings_of_one_name_are_one_task() -> None:
    tally = Tally(keep_unparsed=0)
    tally.feed(
        b"Time: 2026-11-21 23:48:57,244 Task: a%41 Task-time: 1\nTime: 2026-11-21 23:48:58,244 Task: aA Task-time: 2\n",
        "x",
        1,
    )
    [row] = task_rows(tally.tasks, "total")
    assert (row.task, row.executions, row.total) == ("aA", 2, 3.0)


@pytest.mark.unit
@pytest.mark.parametrize("count", [1, 2, 3, 10, 101, 5000])
def test_percentiles_are_exact_linear_interpolation(count: int) -> None:
    rng = random.Random(count)
    values = [rng.choice([rng.uniform(-3, 3), rng.expovariate(2), 0.0, -0.0, 7.0]) for _ in range(count)]
    samples = Samples()
    for index, value in enumerate(values):
        samples.open.append(value)
        if index % 37 == 0:
            samples.seal(5)  # many blocks of different sizes
    ordered = sorted(values)
    # statistics' "inclusive" method is the same linear interpolation (type 7).
    cuts = statistics.quantiles(values, n=100, method="inclusive") if count > 1 else [values[0]] * 99
    for percent in (50, 95, 99):
        assert samples.percentile(percent) == pytest.approx(cuts[percent - 1], rel=1e-12, abs=1e-300)
    assert samples.percentile(0) == ordered[0] and samples.percentile(100) == ordered[-1]
    assert samples.maximum() == max(values)
    assert samples.total() == math.fsum(values)
    assert len(samples) == count


def _type7(ordered: list[float], percent: float) -> float:
    position = (len(ordered) - 1) * percent / 100
    index = math.floor(position)
    below = ordered[index]
    above = ordered[min(index + 1, len(ordered) - 1)]
    return below if position == index else below + (position - index) * (above - below)


def _samples(values: list[float], seal_every: int) -> Samples:
    samples = Samples()
    for index, value in enumerate(values):
        samples.open.append(value)
        if seal_every and index % seal_every == seal_every - 1:
            samples.seal(1)
    return samples


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(8))
def test_high_percentiles_read_from_the_largest_samples_alone_are_exact(seed: int) -> None:
    """A high percentile asked first sorts only the samples above a threshold, and equals the full sort's."""
    rng = random.Random(seed)
    count = rng.choice([BAND_MINIMUM, 5000, 70_000])
    draw = [
        lambda: rng.expovariate(3),
        lambda: rng.choice([0.5, 1.0, 1.0, 1.0, 2.0]),  # ties around every rank
        lambda: rng.paretovariate(1.1),
        lambda: -rng.uniform(0, 1e-300),
    ][seed % 4]
    values = [draw() for _ in range(count)]
    ordered = sorted(values)
    for percent in (90, 95, 99, 99.9, 100):
        samples = _samples(values, rng.choice([0, 37, 4096]))  # fresh: nothing sorted yet
        assert samples.percentile(percent) == pytest.approx(_type7(ordered, percent), rel=1e-12, abs=1e-300)
        assert samples.sorted == 0, "the blocks should stay unsorted"


@pytest.mark.unit
def test_a_threshold_the_sample_misjudges_falls_back_to_sorting_everything() -> None:
    # The values the threshold is picked from (one in a stride) are the largest: too few are kept.
    stride = stats._STRIDE
    values = [1000.0 if index % stride == 0 else index / 7 for index in range(max(BAND_MINIMUM, 30 * stride))]
    samples = _samples(values, 0)
    assert samples.percentile(95) == _type7(sorted(values), 95)
    assert samples.sorted == len(samples.blocks) == 1


@pytest.mark.unit
def test_a_utc_clock_is_utc_however_it_is_named() -> None:
    assert LineClock(UTC).is_utc and LineClock(ZoneInfo("UTC")).is_utc
    assert not LineClock(ZoneInfo("Europe/London")).is_utc
