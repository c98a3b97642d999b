"""Queue-monitor lines in the report: each queue's latest state and worst latency, and each Redis's.

The lines are read as the queue-monitor pipeline reads them, with the regexes of
``pipeline.lines.queue`` (anchored at both ends, with its range check) and the date
filter's validity in ``TASK_TIME_TZ``. Queue lines feed the queue table; RQ's queues and
Celery's are kept apart (``system``, ``broker``): a Celery queue's ``workers`` are its
consumers (None when the broker cannot tell, as on Redis) and it has no abandoned or failed
jobs. Lines with a ``Redis:`` field feed the Redis table: each Redis's latest sample
(memory, policy, evictions, OOM rejections) and the error lines that say why the monitor
could not sample it (their count, the latest). RabbitMQ's node lines are monitor lines too
(parsed), shown through their queues' rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pipeline.lines import queue as queue_line
from pipeline.lines.clock import LineClock
from pipeline.lines.fields import EMPTY, decode_name

from .selection import Selection

# The kinds of line that name a Redis, and what they are to its row.
_REDIS_SAMPLES = ("redis", "celery-redis")
_REDIS_ERRORS = ("error",)


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


@dataclass
class RedisState:
    """One Redis as the monitor saw it: its latest Redis line, and its error lines.

    A Redis known only from error lines has None for the sample's figures; ``suspended`` is
    None on Celery's lines (RQ's flag).
    """

    redis: str
    status: str | None = None  # of the latest Redis line
    memory_used_pct: float | None = None
    used_memory: int | None = None
    maxmemory: int | None = None
    policy: str | None = None
    evicted: int | None = None
    oom_rejected: int | None = None
    suspended: bool | None = None
    reason: str | None = None
    last: int | None = None  # epoch milliseconds of the latest Redis line
    worst_memory_used_pct: float | None = None
    samples: int = 0
    errors: int = 0  # error lines read
    error: str | None = None  # the latest error line's kind (unreachable, auth, ...) and reason
    error_reason: str | None = None
    error_last: int | None = None


class QueueLines:
    """A reader for ``Tally(readers=[...])``: takes monitor lines, keeps a ``QueueState`` per queue."""

    def __init__(self, clock: LineClock, selection: Selection | None = None) -> None:
        self.clock = clock
        self.selection = selection or Selection()
        self.queues: dict[tuple[str, str, str], QueueState] = {}
        self.redis: dict[str, RedisState] = {}

    def offer(self, line: bytes) -> bool:
        """Take the line when the queue-monitor pipeline would parse it."""
        found = queue_line.match_line(line)
        if found is None:
            return False
        kind, match = found
        millis = self.clock.millis(match["timestamp"])
        if millis is None:
            return False
        selection = self.selection
        if (selection.since is not None and millis < selection.since) or (
            selection.until is not None and millis >= selection.until
        ):
            return True
        if kind in _REDIS_SAMPLES:
            self._add_redis(match, millis)
            return True
        if kind in _REDIS_ERRORS:
            self._add_error(match, millis)
            return True
        if queue_line.ROLES[kind] != "queue":
            return True
        queue = decode_name(match["queue"])
        if selection.queues is not None and queue not in selection.queues:
            return True
        self._add(queue, kind, match, millis)
        return True

    def _redis(self, match: re.Match[bytes]) -> RedisState:
        name = decode_name(match["redis"])
        state = self.redis.get(name)
        if state is None:
            state = self.redis[name] = RedisState(name)
        return state

    def _add_redis(self, match: re.Match[bytes], millis: int) -> None:
        state = self._redis(match)
        memory = float(match["memory_used_pct"])
        if state.last is None or millis >= state.last:
            state.status, state.memory_used_pct, state.last = match["status"].decode(), memory, millis
            state.used_memory, state.maxmemory = int(match["used_memory"]), int(match["maxmemory"])
            state.policy = decode_name(match["maxmemory_policy"])
            state.evicted, state.oom_rejected = int(match["evicted_keys"]), int(match["oom_rejections"])
            suspended = match.groupdict().get("suspended")
            state.suspended = None if suspended is None else suspended == b"true"
            state.reason = _reason(match["reason"])
        if state.worst_memory_used_pct is None or memory > state.worst_memory_used_pct:
            state.worst_memory_used_pct = memory
        state.samples += 1

    def _add_error(self, match: re.Match[bytes], millis: int) -> None:
        state = self._redis(match)
        state.errors += 1
        if state.error_last is None or millis >= state.error_last:
            state.error, state.error_reason, state.error_last = (
                match["error"].decode(),
                _reason(match["reason"]),
                millis,
            )

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

    def redis_rows(self) -> list[RedisState]:
        """Worst first: one with errors and no sample, then critical, warn, ok; then by errors and memory."""
        order = {status: rank for rank, status in enumerate(reversed(queue_line.STATUSES))}
        return sorted(
            self.redis.values(),
            key=lambda r: (
                order.get(r.status, -1) if r.status is not None else -1,
                -r.errors,
                -(r.memory_used_pct or 0.0),
                r.redis,
            ),
        )


def _number(raw: bytes, kind: type[float] | type[int]) -> Any:
    """A ``seconds-or-none`` or ``count-or-none`` value: None for ``-``."""
    return None if raw == EMPTY.encode() else kind(raw)


def _reason(text: bytes) -> str | None:
    """A line's ``Reason:`` (None for ``-``)."""
    reason = text.decode("utf-8", "replace")
    return None if reason == EMPTY else reason
