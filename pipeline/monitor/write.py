"""Write a judged sample as queue-health lines: the last step of ``sample`` → ``judge`` → ``write``.

This module only turns numbers and verdicts into the fields of ``pipeline.lines.queue``;
it decides nothing.
"""

from __future__ import annotations

from pipeline.lines.queue import CRITICAL, format_fields

from .judge import Judgement
from .sample import RedisStats, Sample


def redis_memory_values(stats: RedisStats) -> dict[str, object]:
    """What a Redis line says of the server's memory, the same for RQ's Redis and Celery's."""
    return {
        "used_memory": stats.used_memory,
        "maxmemory": stats.maxmemory,
        "memory_used_pct": stats.memory_used_pct,
        "maxmemory_policy": stats.maxmemory_policy,
        "evicted_keys": stats.evicted_keys,
        "oom_rejections": stats.oom_rejections,
    }


def sample_fields(sample: Sample, judgement: Judgement, monitor: str, redis: str) -> list[str]:
    """The fields of every line of ``sample``: Redis first, then each queue."""
    stats = sample.redis
    values: dict[str, object] = {
        "redis": redis,
        **redis_memory_values(stats),
        "suspended": stats.suspended,
        "sample_time": sample.duration,
    }
    lines = [format_fields(monitor, judgement.redis.status, "redis", values, judgement.redis.reason)]
    for queue in sample.queues:
        verdict = judgement.queues[queue.name]
        values = {
            "queue": queue.name,
            "depth": queue.depth,
            "latency": queue.latency,
            "missing": queue.missing,
            "started": queue.started,
            "abandoned": queue.abandoned,
            "failed": queue.failed,
            "new_failed": judgement.new_failed[queue.name],
            "deferred": queue.deferred,
            "scheduled": queue.scheduled,
            "overdue": queue.overdue,
            "workers": queue.workers,
            "busy": queue.busy,
            "idle": queue.idle,
        }
        lines.append(format_fields(monitor, verdict.status, "queue", values, verdict.reason))
    return lines


def error_fields(monitor: str, redis: str, error: str, reason: str) -> str:
    """The fields of the line written when Redis could not be sampled (always ``critical``)."""
    return format_fields(monitor, CRITICAL, "error", {"redis": redis, "error": error}, reason)
