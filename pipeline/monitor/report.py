"""A sample as monitor lines, and the problems ``--check`` prints."""

from __future__ import annotations

from .alerts import Thresholds, Verdict, judge
from .line import CRITICAL, format_fields
from .sample import Sample


def sample_lines(
    sample: Sample, previous: Sample | None, thresholds: Thresholds, monitor: str, redis: str
) -> tuple[list[str], list[tuple[str, str]]]:
    """The fields of every line of ``sample`` (Redis first, then each queue) and its problems.

    Problems are ``(status, "redis: reason")`` or ``(status, "queue <name>: reason")`` pairs.
    """
    redis_verdict, queue_verdicts = judge(sample, previous, thresholds)
    stats = sample.redis
    values: dict[str, object] = {
        "redis": redis,
        "used_memory": stats.used_memory,
        "maxmemory": stats.maxmemory,
        "memory_used_pct": stats.memory_used_pct,
        "maxmemory_policy": stats.maxmemory_policy,
        "evicted_keys": stats.evicted_keys,
        "oom_rejections": stats.oom_rejections,
        "suspended": stats.suspended,
        "sample_time": sample.duration,
    }
    lines = [format_fields(monitor, redis_verdict.status, "redis", values, redis_verdict.reason)]
    problems = _problems("redis", redis_verdict)
    failed_before = {queue.name: queue.failed for queue in previous.queues} if previous else {}
    for queue in sample.queues:
        verdict = queue_verdicts[queue.name]
        values = {
            "queue": queue.name,
            "depth": queue.depth,
            "latency": queue.latency,
            "missing": queue.missing,
            "started": queue.started,
            "abandoned": queue.abandoned,
            "failed": queue.failed,
            "new_failed": max(0, queue.failed - failed_before.get(queue.name, queue.failed)),
            "deferred": queue.deferred,
            "scheduled": queue.scheduled,
            "overdue": queue.overdue,
            "workers": queue.workers,
            "busy": queue.busy,
            "idle": queue.idle,
        }
        lines.append(format_fields(monitor, verdict.status, "queue", values, verdict.reason))
        problems += _problems(f"queue {queue.name}", verdict)
    return lines, problems


def _problems(target: str, verdict: Verdict) -> list[tuple[str, str]]:
    return [(level, f"{target}: {text}") for level, text in verdict.problems]


def error_fields(monitor: str, redis: str, error: str, reason: str) -> str:
    """The fields of the line written when Redis could not be sampled (always ``critical``)."""
    return format_fields(monitor, CRITICAL, "error", {"redis": redis, "error": error}, reason)
