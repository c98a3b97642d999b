"""``--capacity``: how many workers each queue keeps busy, from the task lines (Little's law).

Fed from the report's reading: ``Tally(executions=CapacityTally.add)`` hands over the end
time, queue and task time of every selected execution, chunk by chunk (only with
``--capacity``: the common read path is left as it is). Per queue:

- ``busy_workers`` = sum of task times / window seconds: the mean number of workers busy;
- ``peak_busy_workers``: the same figure for the busiest minute, each execution's busy
  interval (its end minus its task time, to its end) spread over the minutes it covers;
- ``workers_needed`` = ``busy_workers / target utilization``, rounded up.

With queue-monitor lines (``CapacityMonitor``, offered the same lines as the queue table),
the workers the monitor saw (mean of ``Workers:`` over its samples) and their utilization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.lines import queue as queue_line
from pipeline.lines.clock import LineClock, iso_millis
from pipeline.lines.fields import decode_name, shown_name

from .text import grid, human

MINUTE = 60.0
DEFAULT_TARGET = 0.7


@dataclass
class QueueWork:
    """The executions of one queue: how many, their task time, and busy seconds per minute."""

    executions: int = 0
    total: float = 0.0
    minutes: dict[int, float] = field(default_factory=dict)


class CapacityTally:
    """Executions per queue, as the reader selects them."""

    def __init__(self) -> None:
        self.queues: dict[bytes, QueueWork] = {}

    def add(self, executions: list[tuple[int, bytes, bytes]]) -> None:
        """``(end in epoch milliseconds, queue as written, task time as written)`` of each execution."""
        queues = self.queues
        for end_millis, queue, task_time in executions:
            work = queues.get(queue)
            if work is None:
                work = queues[queue] = QueueWork()
            seconds = float(task_time)
            work.executions += 1
            work.total += seconds
            end = end_millis / 1000.0
            start = end - seconds
            minutes = work.minutes
            for minute in range(math.floor(start / MINUTE), math.floor(end / MINUTE) + 1):
                busy = min(end, (minute + 1) * MINUTE) - max(start, minute * MINUTE)
                if busy > 0:
                    minutes[minute] = minutes.get(minute, 0.0) + busy


@dataclass
class Seen:
    """What the monitor's samples said about one queue's workers."""

    samples: int = 0
    workers: int = 0  # summed over samples
    busy: int = 0


class CapacityMonitor:
    """A line reader that never takes a line: it notes each queue line's workers and leaves the line to the queue table.

    Put it before ``QueueLines`` in ``Tally(readers=[...])``; it applies the same selection.
    """

    def __init__(self, clock: LineClock, since: int | None, until: int | None, queues: frozenset[str] | None) -> None:
        self.clock, self.since, self.until, self.selected = clock, since, until, queues
        self.queues: dict[str, Seen] = {}

    def offer(self, line: bytes) -> bool:
        found = queue_line.match_line(line)
        if found is None or found[0] != "queue":
            return False
        match = found[1]
        millis = self.clock.millis(match["timestamp"])
        if millis is None or (self.since is not None and millis < self.since):
            return False
        if self.until is not None and millis >= self.until:
            return False
        name = decode_name(match["queue"])
        if self.selected is not None and name not in self.selected:
            return False
        seen = self.queues.setdefault(name, Seen())
        seen.samples += 1
        seen.workers += int(match["workers"])
        seen.busy += int(match["busy"])
        return False


@dataclass
class CapacityRow:
    """One queue's capacity; ``workers`` and ``utilization`` are None without monitor lines for it."""

    queue: str
    executions: int
    rate: float | None  # executions per second over the window
    mean: float
    busy_workers: float | None
    peak_busy_workers: float
    workers_needed: int | None
    workers: float | None = None  # mean live workers in the monitor's samples
    utilization: float | None = None  # busy_workers / workers


def window_seconds(since: int | None, until: int | None, first: int | None, last: int | None) -> float | None:
    """``[since, until)`` when both are given, else first to last execution read; None when empty."""
    start, end = (since, until) if since is not None and until is not None else (first, last)
    if start is None or end is None or end <= start:
        return None
    return (end - start) / 1000.0


def capacity_rows(
    tally: CapacityTally, window: float | None, target: float, monitor: CapacityMonitor | None = None
) -> list[CapacityRow]:
    """One row per queue, the busiest first."""
    rows = []
    for raw, work in tally.queues.items():
        name = decode_name(raw) if raw else ""
        busy = work.total / window if window else None
        # Rounded up (after rounding off float noise); a queue with executions needs one worker at least.
        needed = max(1, math.ceil(round(busy / target, 9))) if busy is not None else None
        row = CapacityRow(
            queue=name,
            executions=work.executions,
            rate=work.executions / window if window else None,
            mean=work.total / work.executions,
            busy_workers=busy,
            peak_busy_workers=max(work.minutes.values(), default=0.0) / MINUTE,
            workers_needed=needed,
        )
        seen = monitor.queues.get(name) if monitor is not None else None
        if seen is not None and seen.samples:
            row.workers = seen.workers / seen.samples
            row.utilization = busy / row.workers if busy is not None and row.workers else None
        rows.append(row)
    return sorted(rows, key=lambda row: (-(row.busy_workers or 0.0), -row.executions, row.queue))


HEADERS = ("queue", "runs", "rate/s", "mean", "busy", "peak busy", "needed", "workers", "utilization")


def table(
    rows: list[CapacityRow], window: float | None, target: float, start: int | None, end: int | None
) -> list[str]:
    """The capacity table's lines (title first), for ``render.to_table``."""

    def number(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    span = f"{iso_millis(start)} to {iso_millis(end)}, " if start is not None and end is not None else ""
    title = f"capacity ({span}window {human(window)}; workers needed at {target * 100:g} % utilization)"
    cells = [
        [
            shown_name(row.queue),
            str(row.executions),
            number(row.rate, 3),
            human(row.mean),
            number(row.busy_workers),
            number(row.peak_busy_workers),
            "-" if row.workers_needed is None else str(row.workers_needed),
            number(row.workers, 1),
            "-" if row.utilization is None else f"{row.utilization * 100:.0f} %",
        ]
        for row in rows
    ]
    return [title, *(grid(HEADERS, cells) if rows else ["no task executions"])]
