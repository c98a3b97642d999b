"""The report's figures and rendering on hand-made tallies: ``pipeline.report.stats`` and ``render``."""

from __future__ import annotations

import csv
import io
import json
import math

import pytest

from pipeline.report.queues import QueueState
from pipeline.report.render import TASK_KEYS, Report, shown_name, to_csv, to_json, to_table
from pipeline.report.stats import Samples, TaskTally, rank, task_rows
from pipeline.report.text import human

pytestmark = [pytest.mark.unit]


def reference_percentile(values: list[float], percent: float) -> float:
    """Type 7 on a sorted list, written out plainly."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * percent / 100
    below = ordered[math.floor(position)]
    above = ordered[min(math.floor(position) + 1, len(ordered) - 1)]
    return below + (position - math.floor(position)) * (above - below)


def tally(times: list[float], waits: list[float] = (), **statuses: int) -> TaskTally:  # type: ignore[assignment]
    made = TaskTally()
    made.times.open.extend(times)
    made.waits.open.extend(waits)
    made.statuses = {status.encode(): count for status, count in statuses.items()}
    return made


@pytest.mark.parametrize("values", [[4.0], [3.0, 1.0], [5.0, 1.0, 4.0, 2.0, 3.0], [0.25 * i for i in range(41, 0, -1)]])
@pytest.mark.parametrize("percent", [0, 10, 25, 50, 95, 99, 100])
def test_percentiles_match_a_sorted_list(values: list[float], percent: float) -> None:
    samples = Samples()
    samples.open.extend(values)
    assert samples.percentile(percent) == pytest.approx(reference_percentile(values, percent), abs=1e-12)


def test_percentiles_of_nothing_are_none() -> None:
    assert Samples().percentile(50) is None


def test_a_row_has_the_figures_of_its_task() -> None:
    [row] = task_rows({b"jobs.send": tally([1.0, 2.0, 3.0, 4.0], [0.5, 1.5], failed=1, killed=2)}, "total")
    assert (row.task, row.executions, row.total, row.share, row.mean) == ("jobs.send", 4, 10.0, 1.0, 2.5)
    assert (row.p50, row.p95, row.max) == (2.5, pytest.approx(3.85), 4.0)
    assert (row.failed, row.timeout, row.killed) == (1, 0, 2)
    assert (row.wait_mean, row.wait_p95) == (1.0, pytest.approx(1.45))


def test_rows_are_ranked_largest_first_ties_by_name_and_shares_sum_to_one() -> None:
    tallies = {b"b": tally([3.0]), b"a": tally([3.0]), b"c": tally([1.0, 1.0, 1.0, 1.0], [2.0])}
    rows = task_rows(tallies, "total")
    assert [row.task for row in rows] == ["c", "a", "b"]
    assert math.fsum(row.share for row in rows) == pytest.approx(1.0)
    assert [row.task for row in task_rows(tallies, "max")] == ["a", "b", "c"]
    assert [row.task for row in task_rows(tallies, "count")] == ["c", "a", "b"]
    # No waits sort last by wait.
    assert [row.task for row in task_rows(tallies, "wait")] == ["c", "a", "b"]
    assert rank(rows, "p95") == task_rows(tallies, "p95")


def test_two_spellings_of_one_name_are_one_row() -> None:
    [row] = task_rows({b"a%20b": tally([1.0], failed=1), b"a b": tally([2.0], failed=2)}, "total")
    assert (row.task, row.executions, row.total, row.failed) == ("a b", 2, 3.0, 3)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0, "0 s"),
        (1.2, "1.2 s"),
        (0.34, "340 ms"),
        (0.9997, "1 s"),
        (150, "2.5 min"),
        (7200, "2 h"),
        (3 * 86_400, "3 d"),
        (5e-7, "0.5 µs"),
        (-0.002, "-2 ms"),
        (2_000 * 86_400, "2000 d"),
    ],
)
def test_human_durations(seconds: float | None, text: str) -> None:
    assert human(seconds) == text


def test_shown_names_stay_on_one_row() -> None:
    assert shown_name("") == "(empty)"
    assert shown_name("jobs.send_mail") == "jobs.send_mail"
    assert shown_name("a\nb\tc\x00") == "a\\nb\\tc\\x00"


def report() -> Report:
    rows = task_rows({b"a%0Ab": tally([1.0, 3.0], [0.5])}, "total")
    queue = QueueState("high", "warn", depth=3, latency=31.0, workers=1, busy=1, last=1_700_000_000_123, samples=2)
    return Report(rows, 1, lines=3, parsed=2, unparsed=1, first="2023-11-14T22:13:20.000Z", last=None, by="total",
                  queues=[queue])  # fmt: skip


def test_json_has_the_documented_keys_and_numbers() -> None:
    document = json.loads(to_json(report()))
    assert list(document) == ["tasks", "lines", "parsed", "unparsed", "first", "last", "queues", "redis"]
    [task] = document["tasks"]
    assert tuple(task) == TASK_KEYS == (
        "task", "executions", "total", "share", "mean", "p50", "p95", "p99", "max",
        "failed", "timeout", "killed", "retry", "wait_mean", "wait_p95",
    )  # fmt: skip
    assert (task["task"], task["total"], task["wait_p95"]) == ("a\nb", 4.0, 0.5)
    [queue] = document["queues"]
    assert (queue["queue"], queue["last"], queue["worst_latency"]) == ("high", "2023-11-14T22:13:20.123Z", None)


def test_csv_and_table_show_the_same_row() -> None:
    [header, row] = list(csv.reader(io.StringIO(to_csv(report()))))
    assert tuple(header) == TASK_KEYS
    assert row[:3] == ["a\nb", "2", "4.0"] and row[-1] == "0.5"
    table = to_table(report())
    assert table.splitlines()[1].startswith("a\\nb  ")
    assert "1 tasks by total; 3 lines: 2 parsed, 1 unparsed (see --show-unparsed N)" in table
    assert "2023-11-14T22:13:20.123Z" in table
