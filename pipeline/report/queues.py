"""Queue-monitor lines in the report: each queue's latest state and its worst latency.

The lines are read as the queue-monitor pipeline reads them: the regex is built from the
fields ``pipeline.monitor.line`` defines (as the task regex is built from ``pipeline.line``),
anchored at both ends, with the date filter's validity in ``TASK_TIME_TZ``. Redis and
error lines are taken too (they are monitor lines, not unparsed ones); queue lines feed
the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pipeline.line import Field
from pipeline.monitor import line as monitor_line

from .parse import KIND_PATTERNS, LineClock, decode_name
from .reader import Selection

_DECIMAL = rb"[0-9]++\.[0-9]++"
_KINDS = {
    "timestamp": KIND_PATTERNS["timestamp"],
    "name": rb"\S++",
    "status": b"|".join(status.encode() for status in monitor_line.STATUSES),
    "count": rb"[0-9]++",
    "percent": _DECIMAL,
    "seconds": _DECIMAL,
    "seconds-or-none": rb"(?:" + _DECIMAL + rb"|" + re.escape(monitor_line.EMPTY.encode()) + rb")",
    "bool": rb"true|false",
    "word": b"|".join(error.encode() for error in monitor_line.ERRORS),
    "text": rb"[^\r\n]++",
}


def _fields(fields: tuple[Field, ...]) -> bytes:
    return b" ".join(
        re.escape(f"{field.label}: ".encode()) + b"(?P<" + field.name.encode() + b">" + _KINDS[field.kind] + b")"
        for field in fields
    )


def _line(body: tuple[Field, ...]) -> re.Pattern[bytes]:
    fields = (*monitor_line.HEAD_FIELDS, *body, monitor_line.REASON)
    return re.compile(_fields(fields))


QUEUE_LINE = _line(monitor_line.QUEUE_FIELDS)
OTHER_LINES = tuple(_line(body) for kind, body in monitor_line.LINE_KINDS.items() if kind != "queue")


@dataclass
class QueueState:
    """One queue as the monitor saw it: its latest sample and the worst of all samples read."""

    queue: str
    status: str
    depth: int
    latency: float | None
    workers: int
    busy: int
    last: int  # epoch milliseconds of the latest sample
    worst_latency: float | None = None
    max_depth: int = 0
    abandoned: int = 0  # the most abandoned jobs in one sample
    new_failed: int = 0  # failures the samples saw arrive
    warn: int = 0  # samples with each status
    critical: int = 0
    samples: int = 0


class QueueLines:
    """A reader for ``Tally(readers=[...])``: takes monitor lines, keeps a ``QueueState`` per queue."""

    def __init__(self, clock: LineClock, selection: Selection | None = None) -> None:
        self.clock = clock
        self.selection = selection or Selection()
        self.queues: dict[str, QueueState] = {}
        self.lines = 0

    def offer(self, line: bytes) -> bool:
        """Take the line when the queue-monitor pipeline would parse it."""
        match = QUEUE_LINE.fullmatch(line)
        if match is None:
            for pattern in OTHER_LINES:
                other = pattern.fullmatch(line)
                if other is not None and self._millis(other["timestamp"]) is not None:
                    self.lines += 1
                    return True
            return False
        millis = self._millis(match["timestamp"])
        if millis is None:
            return False
        self.lines += 1
        selection = self.selection
        queue = decode_name(match["queue"])
        if (selection.since is not None and millis < selection.since) or (
            selection.until is not None and millis >= selection.until
        ):
            return True
        if selection.queues is not None and queue not in selection.queues:
            return True
        self._add(queue, match, millis)
        return True

    def _millis(self, stamp: bytes) -> int | None:
        seconds = self.clock.seconds(stamp[:19])
        return None if seconds is None else seconds * 1000 + int(stamp[20:23])

    def _add(self, queue: str, match: re.Match[bytes], millis: int) -> None:
        status = match["status"].decode()
        depth = int(match["depth"])
        latency = None if match["latency"] == monitor_line.EMPTY.encode() else float(match["latency"])
        state = self.queues.get(queue)
        if state is None:
            state = self.queues[queue] = QueueState(queue, status, depth, latency, 0, 0, millis)
        if millis >= state.last:
            state.status, state.depth, state.latency, state.last = status, depth, latency, millis
            state.workers, state.busy = int(match["workers"]), int(match["busy"])
        if latency is not None and (state.worst_latency is None or latency > state.worst_latency):
            state.worst_latency = latency
        state.max_depth = max(state.max_depth, depth)
        state.abandoned = max(state.abandoned, int(match["abandoned"]))
        state.new_failed += int(match["new_failed"])
        state.warn += status == monitor_line.WARN
        state.critical += status == monitor_line.CRITICAL
        state.samples += 1

    def rows(self) -> list[QueueState]:
        """Queues worst first: critical, then warn, then by worst latency."""
        order = {status: rank for rank, status in enumerate(reversed(monitor_line.STATUSES))}
        return sorted(self.queues.values(), key=lambda q: (order[q.status], -(q.worst_latency or 0.0), q.queue))
