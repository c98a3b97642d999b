"""The report as a table for a person, JSON for programs, or CSV for spreadsheets.

JSON is a stable interface (documented in the README): top-level ``tasks``, ``lines``,
``parsed``, ``unparsed``, ``first``, ``last``; each task with ``task``, ``executions``,
``total``, ``share``, ``mean``, ``p50``, ``p95``, ``p99``, ``max``, ``failed``,
``timeout``, ``killed``, ``wait_mean``, ``wait_p95``. Seconds are numbers, names decoded.
With queue-monitor lines read, ``queues`` lists each queue's latest state (``queue``,
``status``, ``depth``, ``latency``, ``workers``, ``busy``, ``last``) and the worst of its
samples (``worst_latency``, ``max_depth``, ``abandoned``, ``new_failed``, ``warn``,
``critical``, ``samples``).
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass

from pipeline.lines.clock import iso_millis

from .queues import QueueState
from .stats import TaskRow

TASK_KEYS = tuple(field.name for field in dataclasses.fields(TaskRow))


@dataclass
class Report:
    """What is rendered: ranked rows and the counts of what was read."""

    rows: list[TaskRow]
    tasks: int  # tasks selected, before --top
    lines: int
    parsed: int
    unparsed: int
    first: str | None  # ISO 8601 UTC with milliseconds
    last: str | None
    by: str
    queues: list[QueueState] = dataclasses.field(default_factory=list)


def to_json(report: Report) -> str:
    document = {
        "tasks": [dataclasses.asdict(row) for row in report.rows],
        "lines": report.lines,
        "parsed": report.parsed,
        "unparsed": report.unparsed,
        "first": report.first,
        "last": report.last,
        "queues": [{**dataclasses.asdict(queue), "last": iso_millis(queue.last)} for queue in report.queues],
    }
    return json.dumps(document, indent=1) + "\n"


def to_csv(report: Report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(TASK_KEYS)
    for row in report.rows:
        writer.writerow(
            [
                "" if value is None else repr(value) if isinstance(value, float) else value
                for value in dataclasses.astuple(row)
            ]
        )
    return out.getvalue()


_UNITS = ((86_400.0, "d"), (3_600.0, "h"), (60.0, "min"), (1.0, "s"), (1e-3, "ms"), (1e-6, "µs"))


def human(seconds: float | None) -> str:
    """``1.2 s``, ``340 ms``, ``2.5 min``: three significant digits at most, in the largest unit below it."""
    if seconds is None:
        return "-"
    if seconds == 0:
        return "0 s"
    sign = "-" if seconds < 0 else ""
    size = abs(seconds)
    for scale, unit in _UNITS:
        value = float(f"{size / scale:.3g}")  # rounded first: 999.7 ms is 1 s, not 1000 ms
        if value >= 1 or unit == "µs":
            if value >= 1000 and unit != "d":
                continue
            text = f"{value:.0f}" if 1000 <= value < 1e9 else f"{value:.3g}"
            return f"{sign}{text} {unit}"
    raise AssertionError("unreachable")


def shown_name(name: str) -> str:
    """A decoded name for a terminal: control and other invisible characters escaped, so rows stay rows."""
    if name == "":
        return "(empty)"
    if name.isprintable():
        return name
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)


_HEADERS = (
    "task",
    "runs",
    "total",
    "share",
    "mean",
    "p50",
    "p95",
    "p99",
    "max",
    "failed",
    "timeout",
    "killed",
    "wait mean",
    "wait p95",
)


def _cells(row: TaskRow) -> list[str]:
    return [
        shown_name(row.task),
        str(row.executions),
        human(row.total),
        f"{row.share * 100:.1f} %",
        human(row.mean),
        human(row.p50),
        human(row.p95),
        human(row.p99),
        human(row.max),
        str(row.failed),
        str(row.timeout),
        str(row.killed),
        human(row.wait_mean),
        human(row.wait_p95),
    ]


_QUEUE_HEADERS = ("queue", "status", "depth", "latency", "workers", "busy", "worst latency", "most waiting")
_QUEUE_HEADERS += ("abandoned", "new failed", "warn", "critical", "last sample")


def _queue_cells(queue: QueueState) -> list[str]:
    return [
        shown_name(queue.queue) + ("" if queue.system == "rq" else f" ({queue.system} on {queue.broker})"),
        queue.status,
        str(queue.depth),
        human(queue.latency),
        "-" if queue.workers is None else str(queue.workers),
        str(queue.busy),
        human(queue.worst_latency),
        str(queue.max_depth),
        str(queue.abandoned),
        str(queue.new_failed),
        str(queue.warn),
        str(queue.critical),
        iso_millis(queue.last),
    ]


def _grid(headers: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    """Aligned columns: the first left, the others right."""
    grid = [list(headers), *rows]
    widths = [max(len(cells[i]) for cells in grid) for i in range(len(headers))]
    lines = []
    for cells in grid:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        lines.append("  ".join((first, *rest)).rstrip())
    return lines


def to_table(report: Report) -> str:
    """Aligned columns, task left, figures right, a summary line, and the queues the monitor saw."""
    lines = []
    if report.rows:
        lines += _grid(_HEADERS, [_cells(row) for row in report.rows])
    else:
        lines.append("no task executions")
    shown = (
        f"top {len(report.rows)} of {report.tasks} tasks"
        if len(report.rows) < report.tasks
        else (f"{report.tasks} tasks")
    )
    summary = f"{shown} by {report.by}; {report.lines} lines: {report.parsed} parsed, {report.unparsed} unparsed"
    if report.unparsed:
        summary += " (see --show-unparsed N)"
    lines.append("")
    lines.append(summary)
    if report.first is not None:
        lines.append(f"from {report.first} to {report.last}")
    if report.queues:
        lines += ["", "queues (queue-monitor lines: the latest sample, and the worst of all read)"]
        lines += _grid(_QUEUE_HEADERS, [_queue_cells(queue) for queue in report.queues])
    return "\n".join(lines) + "\n"


RENDERERS = {"table": to_table, "json": to_json, "csv": to_csv}
