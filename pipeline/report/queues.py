"""Queue-monitor lines in the report: each queue's latest state and its worst latency.

The lines are read as the queue-monitor pipeline reads them, with the regexes of
``pipeline.lines.queue`` (anchored at both ends) and the date filter's validity in
``TASK_TIME_TZ``. Broker and
error lines are taken too (they are monitor lines, not unparsed ones); queue lines feed
the table. RQ's queues and Celery's are kept apart (``system``, ``broker``): a Celery
queue's ``workers`` are its consumers (None when the broker cannot tell, as on Redis) and it
has no abandoned or failed jobs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.lines import queue as queue_line
from pipeline.lines.clock import LineClock
from pipeline.lines.fields import EMPTY, decode_name

from .reader import Selection


@dataclass
class QueueState:
    """One queue as the monitor saw it: its latest sample and the worst of all samples read."""

    queue: str
    status: str
    depth: int
    latency: float | None
    workers: int | None  # None: the broker cannot tell (Celery on Redis)
    busy: int
    last: int  # epoch milliseconds of the latest sample
    worst_latency: float | None = None
    max_depth: int = 0
    abandoned: int = 0  # the most abandoned jobs in one sample
    new_failed: int = 0  # failures the samples saw arrive
    warn: int = 0  # samples with each status
    critical: int = 0
    samples: int = 0
    system: str = "rq"
    broker: str = "redis"


class QueueLines:
    """A reader for ``Tally(readers=[...])``: takes monitor lines, keeps a ``QueueState`` per queue."""

    def __init__(self, clock: LineClock, selection: Selection | None = None) -> None:
        self.clock = clock
        self.selection = selection or Selection()
        self.queues: dict[tuple[str, str, str], QueueState] = {}
        self.lines = 0

    def offer(self, line: bytes) -> bool:
        """Take the line when the queue-monitor pipeline would parse it."""
        found = queue_line.match_line(line)
        if found is None:
            return False
        kind, match = found
        millis = self.clock.millis(match["timestamp"])
        if millis is None:
            return False
        self.lines += 1
        if queue_line.ROLES[kind] != "queue":
            return True
        selection = self.selection
        queue = decode_name(match["queue"])
        if (selection.since is not None and millis < selection.since) or (
            selection.until is not None and millis >= selection.until
        ):
            return True
        if selection.queues is not None and queue not in selection.queues:
            return True
        self._add(queue, kind, match, millis)
        return True

    def _add(self, queue: str, kind: str, match: re.Match[bytes], millis: int) -> None:
        status = match["status"].decode()
        depth = int(match["depth"])
        latency = _number(match["latency"], float)
        system = (match["system"] or b"rq").decode()
        broker = (match["broker"] or b"redis").decode()
        celery = kind == "celery-queue"
        key = (system, broker, queue)
        state = self.queues.get(key)
        if state is None:
            state = self.queues[key] = QueueState(
                queue, status, depth, latency, 0, 0, millis, system=system, broker=broker
            )
        if millis >= state.last:
            state.status, state.depth, state.latency, state.last = status, depth, latency, millis
            state.workers = _number(match["consumers"], int) if celery else int(match["workers"])
            state.busy = 0 if celery else int(match["busy"])
        if latency is not None and (state.worst_latency is None or latency > state.worst_latency):
            state.worst_latency = latency
        state.max_depth = max(state.max_depth, depth)
        if not celery:
            state.abandoned = max(state.abandoned, int(match["abandoned"]))
            state.new_failed += int(match["new_failed"])
        state.warn += status == queue_line.WARN
        state.critical += status == queue_line.CRITICAL
        state.samples += 1

    def rows(self) -> list[QueueState]:
        """Queues worst first: critical, then warn, then by worst latency."""
        order = {status: rank for rank, status in enumerate(reversed(queue_line.STATUSES))}
        return sorted(
            self.queues.values(), key=lambda q: (order[q.status], -(q.worst_latency or 0.0), q.queue, q.system)
        )


def _number(raw: bytes, kind: type[float] | type[int]) -> Any:
    """A ``seconds-or-none`` or ``count-or-none`` value: None for ``-``."""
    return None if raw == EMPTY.encode() else kind(raw)
