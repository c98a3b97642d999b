"""``python -m pipeline.report --capacity``: workers per queue from logs whose answers are known."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from pipeline.report.capacity import CapacityTally
from pipeline.report.cli import main

pytestmark = [pytest.mark.unit]

START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _task(end: datetime, queue: str, seconds: float, zone: str = "UTC") -> str:
    local = end.astimezone(ZoneInfo(zone))
    stamp = local.strftime("%Y-%m-%d %H:%M:%S,") + f"{local.microsecond // 1000:03d}"
    return (
        f"Time: {stamp} Task: jobs.work Task-time: {seconds:.6f} Queue: {queue} Status: finished "
        f"Wait-time: 0.100000 Job: j Worker: w"
    )


def _monitor(at: datetime, queue: str, workers: int, busy: int) -> str:
    stamp = at.strftime("%Y-%m-%d %H:%M:%S,000")
    return (
        f"Time: {stamp} Monitor: m Status: ok Queue: {queue} Depth: 0 Latency: 0.000000 Missing: 0 Started: 0 "
        f"Abandoned: 0 Failed: 0 New-failed: 0 Deferred: 0 Scheduled: 0 Overdue: 0 Workers: {workers} "
        f"Busy: {busy} Idle: {workers - busy} Reason: -"
    )


def _at(minutes: int, seconds: int = 0) -> datetime:
    return START + timedelta(minutes=minutes, seconds=seconds)


def _log(zone: str = "UTC") -> list[str]:
    """600 s from the first line to the last.

    default: 20 runs of 30 s (600 s busy: 1.0 worker); 8 of them fill 10:05 four times over (peak 4.0).
    high: 10 runs of 3 s (0.05 worker), one per minute. long: one run of 150 s over 10:01:30-10:04:00 (peak 1.0).
    """
    lines = [_task(_at(5, 30), "default", 30, zone) for _ in range(4)]
    lines += [_task(_at(6), "default", 30, zone) for _ in range(4)]
    for minutes, seconds in [(0, 30), (1, 30), (2, 30), (3, 30), (4, 30), (6, 30), (7, 30), (8, 30), (9, 30)]:
        lines.append(_task(_at(minutes, seconds), "default", 30, zone))
    lines += [_task(_at(minutes), "default", 30, zone) for minutes in (7, 8, 9)]
    lines += [_task(_at(0), "high", 3, zone), _task(_at(10), "high", 3, zone)]
    lines += [_task(_at(minutes, 10), "high", 3, zone) for minutes in range(1, 9)]
    lines.append(_task(_at(4), "long", 150, zone))
    return lines


def _report(tmp_path: Path, lines: list[str], *args: str, zone: str = "UTC") -> tuple[int, str, str]:
    path = tmp_path / "task-time.log"
    path.write_text("\n".join(lines) + "\n")
    out, err = io.StringIO(), io.StringIO()
    stdin = io.TextIOWrapper(io.BytesIO())
    code = main([str(path), *args], environ={"TASK_TIME_TZ": zone}, stdin=stdin, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def _capacity(tmp_path: Path, lines: list[str], *args: str, zone: str = "UTC") -> dict[str, dict[str, object]]:
    code, out, err = _report(tmp_path, lines, "--capacity", "--format", "json", *args, zone=zone)
    assert code == 0, err
    return {row["queue"]: row for row in json.loads(out)["capacity"]}


@pytest.mark.parametrize("zone", ["UTC", "Europe/Paris"])
def test_busy_workers_peak_and_workers_needed_over_first_to_last_line(tmp_path: Path, zone: str) -> None:
    rows = _capacity(tmp_path, _log(zone), zone=zone)
    assert list(rows) == ["default", "long", "high"]  # busiest first
    default = rows["default"]
    assert default["executions"] == 20 and default["mean"] == pytest.approx(30)
    assert default["rate"] == pytest.approx(20 / 600)
    assert default["busy_workers"] == pytest.approx(1.0)
    assert default["peak_busy_workers"] == pytest.approx(4.0)
    assert default["workers_needed"] == 2  # 1.0 / 0.7, rounded up
    assert (default["workers"], default["utilization"]) == (None, None)  # no monitor lines
    assert rows["high"]["busy_workers"] == pytest.approx(0.05)
    assert rows["high"]["peak_busy_workers"] == pytest.approx(0.05)
    assert rows["high"]["workers_needed"] == 1
    assert rows["long"]["busy_workers"] == pytest.approx(0.25)
    assert rows["long"]["peak_busy_workers"] == pytest.approx(1.0)  # 150 s spread over 10:01:30-10:04:00
    assert set(default) == {
        "queue",
        "executions",
        "rate",
        "mean",
        "busy_workers",
        "peak_busy_workers",
        "workers_needed",
        "workers",
        "utilization",
    }


def test_since_and_until_give_the_window_and_the_target_sizes_the_workers(tmp_path: Path) -> None:
    window = ("--since", "2026-11-20T10:00:00Z", "--until", "2026-11-20T10:20:00Z")
    rows = _capacity(tmp_path, _log(), *window)
    assert rows["default"]["busy_workers"] == pytest.approx(0.5)  # 600 s over 1200 s
    assert rows["default"]["rate"] == pytest.approx(20 / 1200)
    assert rows["default"]["workers_needed"] == 1
    rows = _capacity(tmp_path, _log(), "--target-utilization", "0.5")
    assert rows["default"]["workers_needed"] == 2  # exactly 2.0: not rounded up to 3
    rows = _capacity(tmp_path, _log(), "--target-utilization", "0.25")
    assert rows["default"]["workers_needed"] == 4


def test_monitor_lines_add_the_workers_that_were_there_and_their_utilization(tmp_path: Path) -> None:
    monitor = [_monitor(_at(2), "default", 1, 1), _monitor(_at(4), "default", 2, 1), _monitor(_at(6), "default", 3, 2)]
    monitor.append(_monitor(_at(30), "default", 6, 0))  # after the last task line, before --until below
    rows = _capacity(tmp_path, _log() + monitor)
    assert rows["default"]["workers"] == pytest.approx(3.0)  # (1 + 2 + 3 + 6) / 4
    assert rows["default"]["utilization"] == pytest.approx(1 / 3)
    assert rows["high"]["workers"] is None  # the monitor never saw it
    rows = _capacity(tmp_path, _log() + monitor, "--since", "2026-11-20T10:00Z", "--until", "2026-11-20T10:20Z")
    assert rows["default"]["workers"] == pytest.approx(2.0)
    assert rows["default"]["utilization"] == pytest.approx(0.25)  # 0.5 busy of 2
    rows = _capacity(tmp_path, _log() + monitor, "--queue", "high")
    assert list(rows) == ["high"]


def test_the_table_and_the_common_path(tmp_path: Path) -> None:
    code, out, _ = _report(tmp_path, _log(), "--capacity")
    assert code == 0
    title = "capacity (2026-11-20T10:00:00.000Z to 2026-11-20T10:10:00.000Z, window 10 min; "
    assert title + "workers needed at 70 % utilization)" in out
    [header, first] = out.split(title)[1].splitlines()[1:3]
    assert header.split() == [
        "queue",
        "runs",
        "rate/s",
        "mean",
        "busy",
        "peak",
        "busy",
        "needed",
        "workers",
        "utilization",
    ]
    assert first.split() == ["default", "20", "0.033", "30", "s", "1.00", "4.00", "2", "-", "-"]
    code, out, _ = _report(tmp_path, _log(), "--format", "json")
    assert code == 0 and "capacity" not in json.loads(out)  # only with --capacity
    code, out, _ = _report(tmp_path, _log())
    assert "capacity" not in out


@pytest.mark.parametrize("value", ["0", "1.5", "-0.2"])
def test_a_target_utilization_outside_0_to_1_is_refused(tmp_path: Path, value: str) -> None:
    code, out, err = _report(tmp_path, _log(), "--capacity", "--target-utilization", value)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--target-utilization" in err


def test_one_execution_is_spread_over_the_minutes_it_covers() -> None:
    tally = CapacityTally()
    end = round(START.timestamp() * 1000) + 90_000  # 10:01:30
    tally.add([(end, b"q", b"120.000000"), (end, b"q", b"0.000000")])
    work = tally.queues[b"q"]
    minute = int(START.timestamp()) // 60
    assert work.minutes == {minute - 1: 30.0, minute: 60.0, minute + 1: 30.0}
    assert (work.executions, work.total) == (2, 120.0)


def test_an_empty_window_has_no_rate_and_an_empty_log_no_rows(tmp_path: Path) -> None:
    rows = _capacity(tmp_path, [_task(_at(1), "default", 2)])  # one line: first == last
    assert rows["default"]["executions"] == 1 and rows["default"]["mean"] == 2
    assert (rows["default"]["rate"], rows["default"]["busy_workers"], rows["default"]["workers_needed"]) == (
        None,
        None,
        None,
    )
    assert rows["default"]["peak_busy_workers"] == pytest.approx(2 / 60)
    code, out, _ = _report(tmp_path, ["not a task line"], "--capacity", "--format", "json")
    assert code == 0 and json.loads(out)["capacity"] == []
    code, out, _ = _report(tmp_path, ["not a task line"], "--capacity")
    assert "capacity (window -; workers needed at 70 % utilization)\nno task executions" in out
