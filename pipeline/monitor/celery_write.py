"""Write a judged Celery sample as queue-health lines (``System: celery Broker: …``): it decides nothing."""

from __future__ import annotations

from pipeline.lines.queue import CRITICAL, format_fields

from .celery_judge import CeleryJudgement
from .celery_redis import CeleryRedisSample
from .rabbitmq import RabbitSample
from .write import redis_memory_values

CELERY = "celery"


def celery_fields(
    sample: CeleryRedisSample | RabbitSample, judgement: CeleryJudgement, monitor: str, label: str
) -> list[str]:
    """The fields of every line of ``sample``: the broker (Redis, or each RabbitMQ node) first, then each queue.

    ``label`` is Redis's ``host:port/db``; RabbitMQ's nodes write their own names.
    """
    lines = []
    if isinstance(sample, CeleryRedisSample):
        origin = (CELERY, "redis")
        stats, verdict = sample.redis, judgement.broker["redis"]
        values: dict[str, object] = {
            "redis": label,
            **redis_memory_values(stats),
            "unacked": sample.unacked,
            "sample_time": sample.duration,
        }
        lines.append(format_fields(monitor, verdict.status, "celery-redis", values, verdict.reason, origin))
    else:
        origin = (CELERY, "rabbitmq")
        for node in sample.nodes:
            verdict = judgement.broker[f"node {node.name}"]
            values = {
                "node": node.name,
                "used_memory": node.mem_used,
                "maxmemory": node.mem_limit,
                "memory_used_pct": node.memory_used_pct,
                "memory_alarm": node.mem_alarm,
                "disk_alarm": node.disk_free_alarm,
                "sample_time": sample.duration,
            }
            lines.append(format_fields(monitor, verdict.status, "node", values, verdict.reason, origin))
    for queue in sample.queues:
        verdict = judgement.queues[queue.name]
        values = {
            "queue": queue.name,
            "depth": queue.depth,
            "latency": queue.latency,
            "reserved": queue.reserved,
            "consumers": queue.consumers,
        }
        lines.append(format_fields(monitor, verdict.status, "celery-queue", values, verdict.reason, origin))
    return lines


def celery_error_fields(monitor: str, broker: str, label: str, error: str, reason: str) -> str:
    """The line written when the broker could not be sampled (always ``critical``)."""
    kind, key = ("error", "redis") if broker == "redis" else ("node-error", "node")
    return format_fields(monitor, CRITICAL, kind, {key: label, "error": error}, reason, (CELERY, broker))
