"""The report as a table for a person, JSON for programs, or CSV for spreadsheets.

JSON is a stable interface (documented in the README): top-level ``tasks``, ``lines``,
``parsed``, ``unparsed``, ``first``, ``last``; each task with ``task``, ``executions``,
``total``, ``share``, ``mean``, ``p50``, ``p95``, ``p99``, ``max``, ``failed``,
``timeout``, ``killed``, ``retry``, ``wait_mean``, ``wait_p95``. Seconds are numbers, names decoded.
With queue-monitor lines read, ``queues`` lists each queue's latest state (``queue``,
``status``, ``depth``, ``latency``, ``workers``, ``busy``, ``last``) and the worst of its
samples (``worst_latency``, ``max_depth``, ``abandoned``, ``new_failed``, ``warn``,
``critical``, ``samples``). ``redis`` lists each Redis the monitor sampled or failed to:
its latest Redis line (``redis``, ``status``, ``memory_used_pct``, ``used_memory``,
``maxmemory``, ``policy``, ``evicted``, ``oom_rejected``, ``suspended``, ``reason``,
``last``), the highest memory of all its samples (``worst_memory_used_pct``), ``samples``,
and its error lines (``errors``, the count; the latest one's ``error``, ``error_reason``,
``error_last``); null where no such line was read.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass

from pipeline.lines.clock import iso_millis
from pipeline.lines.fields import shown_name, shown_text  # one escaping for every terminal output

from .capacity import CapacityRow
from .queues import QueueState, RedisState
from .stats import TaskRow
from .text import grid, human

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
    redis: list[RedisState] = dataclasses.field(default_factory=list)
    capacity: list[CapacityRow] | None = None  # --capacity (pipeline.report.capacity)
    capacity_table: list[str] = dataclasses.field(default_factory=list)


def to_json(report: Report) -> str:
    document = {
        "tasks": [dataclasses.asdict(row) for row in report.rows],
        "lines": report.lines,
        "parsed": report.parsed,
        "unparsed": report.unparsed,
        "first": report.first,
        "last": report.last,
        "queues": [{**dataclasses.asdict(queue), "last": iso_millis(queue.last)} for queue in report.queues],
        "redis": [
            {
                **dataclasses.asdict(redis),
                "last": _iso(redis.last),
                "error_last": _iso(redis.error_last),
            }
            for redis in report.redis
        ],
    }
    if report.capacity is not None:  # --capacity
        document["capacity"] = [dataclasses.asdict(row) for row in report.capacity]
    # Strict JSON: no NaN or Infinity. Every figure is finite (values are within
    # SECONDS_LIMIT), so this raising is a bug, never a property of the input.
    return json.dumps(document, indent=1, allow_nan=False) + "\n"


def _iso(millis: int | None) -> str | None:
    return None if millis is None else iso_millis(millis)


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
    "retry",
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
        str(row.retry),
        human(row.wait_mean),
        human(row.wait_p95),
    ]


_QUEUE_HEADERS: tuple[str, ...] = ("queue", "status", "depth", "latency", "workers", "busy", "worst latency")
_QUEUE_HEADERS += ("most waiting", "abandoned", "new failed", "warn", "critical", "last sample")


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


_REDIS_HEADERS: tuple[str, ...] = ("redis", "status", "memory", "worst memory", "policy", "evicted", "oom rejected")
_REDIS_HEADERS += ("suspended", "last sample", "errors", "last error", "last error at")


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} %"


def _optional(value: object) -> str:
    return "-" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _redis_cells(redis: RedisState) -> list[str]:
    return [
        shown_name(redis.redis),
        _optional(redis.status),
        _percent(redis.memory_used_pct),
        _percent(redis.worst_memory_used_pct),
        "-" if redis.policy is None else shown_name(redis.policy),
        _optional(redis.evicted),
        _optional(redis.oom_rejected),
        _optional(redis.suspended),
        _optional(_iso(redis.last)),
        str(redis.errors),
        _optional(redis.error),
        _optional(_iso(redis.error_last)),
    ]


def to_table(report: Report) -> str:
    """Aligned columns, task left, figures right, a summary line, and the queues the monitor saw."""
    lines = []
    if report.rows:
        lines += grid(_HEADERS, [_cells(row) for row in report.rows])
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
        lines += grid(_QUEUE_HEADERS, [_queue_cells(queue) for queue in report.queues])
    if report.redis:
        lines += ["", "redis (queue-monitor lines: the latest sample, and the errors that kept the monitor from one)"]
        lines += grid(_REDIS_HEADERS, [_redis_cells(redis) for redis in report.redis])
        for redis in report.redis:
            if redis.reason is not None and redis.status != "ok":
                lines.append(f"{shown_name(redis.redis)}: {redis.status}: {shown_text(redis.reason)}")
            if redis.error is not None:
                reason = "" if redis.error_reason is None else f": {shown_text(redis.error_reason)}"
                lines.append(f"{shown_name(redis.redis)}: last error {redis.error}{reason}")
    if report.capacity_table:  # --capacity
        lines += ["", *report.capacity_table]
    return "\n".join(lines) + "\n"


RENDERERS = {"table": to_table, "json": to_json, "csv": to_csv}
