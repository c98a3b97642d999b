"""Judge a sample: its numbers and the thresholds in, a status (ok, warn, critical) and the reasons out.

The second step of the monitor's one-way flow: ``sample`` (broker → numbers), ``judge``
(numbers and thresholds → status and reasons), ``write`` (→ lines).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipeline import settings
from pipeline.lines.fields import shown_name
from pipeline.lines.queue import CRITICAL, OK, STATUSES, WARN

from .sample import QueueStats, RedisStats, Sample

DEFAULT_QUEUE = "default"


@dataclass(frozen=True)
class Thresholds:
    """When a line turns ``warn`` or ``critical``.

    ``max_latency`` maps queue names to seconds; the entry ``default`` applies to every
    queue not named (no entry: no latency limit).
    """

    memory_warn: float = settings.MEMORY_WARN.default
    memory_critical: float = settings.MEMORY_CRITICAL.default
    max_latency: Mapping[str, float] = field(
        default_factory=lambda: parse_latency_limits(settings.MAX_LATENCY.text({}))
    )

    def latency_limit(self, queue: str) -> float | None:
        return self.max_latency.get(queue, self.max_latency.get(DEFAULT_QUEUE))


@dataclass(frozen=True)
class Verdict:
    """A line's status and the problems that set it, worst first."""

    status: str
    problems: list[tuple[str, str]]

    @property
    def reason(self) -> str:
        return "; ".join(text for _, text in self.problems)


def worst(statuses: list[str]) -> str:
    """The most severe of ``statuses`` (``ok`` for none)."""
    return max(statuses, key=STATUSES.index, default=OK)


def _verdict(problems: list[tuple[str, str]]) -> Verdict:
    problems = sorted(problems, key=lambda problem: -STATUSES.index(problem[0]))
    return Verdict(worst([level for level, _ in problems]), problems)


def judge_redis(
    stats: RedisStats, previous: RedisStats | None, thresholds: Thresholds, faults: tuple[str, ...] = ()
) -> Verdict:
    """Memory against ``maxmemory``, the eviction policy, evictions or OOM rejections since
    ``previous``, and keys no queue owns that could not be read (``faults``, warn)."""
    problems: list[tuple[str, str]] = [(WARN, fault) for fault in faults]
    if stats.maxmemory == 0:
        problems.append((WARN, "no maxmemory: Redis grows until the host kills it"))
    else:
        used = stats.memory_used_pct
        if used >= thresholds.memory_critical:
            problems.append((CRITICAL, f"memory {used:.1f}% of maxmemory >= {thresholds.memory_critical:g}%"))
        elif used >= thresholds.memory_warn:
            problems.append((WARN, f"memory {used:.1f}% of maxmemory >= {thresholds.memory_warn:g}%"))
    if stats.maxmemory_policy != "noeviction":
        problems.append((WARN, f"maxmemory-policy {stats.maxmemory_policy}: RQ's keys can be evicted silently"))
    if previous is not None:
        if stats.evicted_keys > previous.evicted_keys:
            problems.append((CRITICAL, f"{stats.evicted_keys - previous.evicted_keys} keys evicted since last sample"))
        if stats.oom_rejections > previous.oom_rejections:
            count = stats.oom_rejections - previous.oom_rejections
            problems.append((CRITICAL, f"{count} commands rejected with OOM since last sample"))
    if stats.suspended:
        problems.append((WARN, "workers are suspended (rq suspend)"))
    return _verdict(problems)


def judge_queue(queue: QueueStats, thresholds: Thresholds) -> Verdict:
    """Waiting jobs without a worker, latency over its limit, abandoned and overdue jobs; a
    queue RQ does not know (not in ``rq:queues``) or one of its keys unreadable is warn."""
    problems: list[tuple[str, str]] = []
    if not queue.known:
        problems.append((WARN, "unknown queue"))
    problems += [(WARN, fault) for fault in queue.faults]
    if queue.depth > 0 and queue.workers == 0:
        problems.append((CRITICAL, f"{queue.depth} jobs waiting and no live worker"))
    limit = thresholds.latency_limit(queue.name)
    if limit is not None and queue.latency is not None and queue.latency > limit:
        problems.append((WARN, f"latency {queue.latency:.0f}s > {limit:g}s"))
    if queue.abandoned:
        problems.append((WARN, f"{queue.abandoned} abandoned jobs (worker died mid-job)"))
    if queue.overdue:
        problems.append((WARN, f"{queue.overdue} scheduled jobs overdue (is a scheduler running?)"))
    return _verdict(problems)


@dataclass(frozen=True)
class Judgement:
    """The verdicts of one sample: Redis's, each queue's, and the failures that arrived since the previous sample."""

    redis: Verdict
    queues: dict[str, Verdict]
    new_failed: dict[str, int]

    def problems(self) -> list[tuple[str, str]]:
        """``(status, "redis: reason")`` and ``(status, "queue <name>: reason")`` pairs, Redis first; names escaped."""
        found = [(level, f"redis: {text}") for level, text in self.redis.problems]
        for name, verdict in self.queues.items():
            found += [(level, f"queue {shown_name(name)}: {text}") for level, text in verdict.problems]
        return found


def judge(sample: Sample, previous: Sample | None, thresholds: Thresholds) -> Judgement:
    """Judge every line of ``sample``; ``previous`` (the last good sample) gives what changed since."""
    redis = judge_redis(sample.redis, previous.redis if previous else None, thresholds, sample.faults)
    failed_before = {queue.name: queue.failed for queue in previous.queues} if previous else {}
    return Judgement(
        redis,
        {queue.name: judge_queue(queue, thresholds) for queue in sample.queues},
        {queue.name: max(0, queue.failed - failed_before.get(queue.name, queue.failed)) for queue in sample.queues},
    )


def parse_latency_limits(text: str) -> dict[str, float]:
    """``high=30,default=300`` as a mapping; raises ``ValueError`` with a one-line reason."""
    limits: dict[str, float] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, sep, value = item.rpartition("=")
        if not sep or not name:
            raise ValueError(f"latency limit {item!r} is not QUEUE=SECONDS")
        try:
            seconds = float(value)
        except ValueError:
            raise ValueError(f"latency limit {item!r}: {value!r} is not a number of seconds") from None
        if not seconds > 0:
            raise ValueError(f"latency limit {item!r} must be positive")
        if math.isinf(seconds):
            raise ValueError(f"latency limit {item!r} must be a finite number of seconds")
        limits[name] = seconds
    return limits
