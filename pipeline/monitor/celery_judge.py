"""Judge a Celery sample: the same statuses and thresholds as RQ's (``judge``), for Celery's brokers.

Redis: memory against ``maxmemory``, the eviction policy, evictions and OOM rejections, as
for RQ. RabbitMQ: each node's memory against its limit on the same 80 %/90 % thresholds,
and a memory or disk alarm is critical: the node then blocks every publishing connection.
Queues: messages waiting with no consumer (RabbitMQ; Redis cannot tell), latency over its
limit, latency unknown while messages wait.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.lines.queue import CRITICAL, STATUSES, WARN

from .celery_redis import CeleryQueueStats, CeleryRedisSample
from .judge import Thresholds, Verdict, judge_redis, worst
from .rabbitmq import NodeStats, RabbitSample

BLOCKED = "publishers are blocked"


def _verdict(problems: list[tuple[str, str]]) -> Verdict:
    problems = sorted(problems, key=lambda problem: -STATUSES.index(problem[0]))
    return Verdict(worst([level for level, _ in problems]), problems)


def judge_node(node: NodeStats, thresholds: Thresholds) -> Verdict:
    """Alarms first (publishers are blocked), then memory against the node's limit."""
    problems: list[tuple[str, str]] = []
    if not node.running:
        problems.append((CRITICAL, "node is not running"))
    if node.mem_alarm:
        problems.append((CRITICAL, f"memory alarm: {BLOCKED}"))
    if node.disk_free_alarm:
        problems.append((CRITICAL, f"disk alarm: {BLOCKED}"))
    used = node.memory_used_pct
    if node.mem_limit and used >= thresholds.memory_critical:
        problems.append((CRITICAL, f"memory {used:.1f}% of the node's limit >= {thresholds.memory_critical:g}%"))
    elif node.mem_limit and used >= thresholds.memory_warn:
        problems.append((WARN, f"memory {used:.1f}% of the node's limit >= {thresholds.memory_warn:g}%"))
    return _verdict(problems)


def judge_celery_queue(queue: CeleryQueueStats, thresholds: Thresholds) -> Verdict:
    """No consumer while messages wait (when the broker can tell), latency over its limit or unknown."""
    problems: list[tuple[str, str]] = []
    if queue.missing:
        problems.append((WARN, "no such queue on the broker"))
    if queue.depth > 0 and queue.consumers == 0:
        problems.append((CRITICAL, f"{queue.depth} messages waiting and no consumer"))
    limit = thresholds.latency_limit(queue.name)
    if limit is not None and queue.latency is not None and queue.latency > limit:
        problems.append((WARN, f"latency {queue.latency:.0f}s > {limit:g}s"))
    if queue.depth > 0 and queue.latency is None:
        problems.append((WARN, f"latency unknown: {queue.unknown_latency or 'no timestamp on the oldest message'}"))
    return _verdict(problems)


@dataclass(frozen=True)
class CeleryJudgement:
    """The verdicts of one Celery sample: the broker's (Redis, or each RabbitMQ node) and each queue's."""

    broker: dict[str, Verdict]
    queues: dict[str, Verdict]

    def problems(self) -> list[tuple[str, str]]:
        """``(status, "celery redis …: reason")`` and ``(status, "celery queue <name>: reason")`` pairs."""
        found = [(level, f"celery {name}: {text}") for name, v in self.broker.items() for level, text in v.problems]
        for name, verdict in self.queues.items():
            found += [(level, f"celery queue {name}: {text}") for level, text in verdict.problems]
        return found


def judge_celery(
    sample: CeleryRedisSample | RabbitSample, previous: CeleryRedisSample | RabbitSample | None, thresholds: Thresholds
) -> CeleryJudgement:
    """Judge every line of ``sample``; ``previous`` (the last good sample) gives Redis's evictions and OOM since."""
    if isinstance(sample, CeleryRedisSample):
        before = previous.redis if isinstance(previous, CeleryRedisSample) else None
        verdict = judge_redis(sample.redis, before, thresholds)
        problems = [(level, text.replace("RQ's keys", "Celery's messages")) for level, text in verdict.problems]
        broker = {"redis": Verdict(verdict.status, problems)}
    else:
        broker = {f"node {node.name}": judge_node(node, thresholds) for node in sample.nodes}
    return CeleryJudgement(broker, {queue.name: judge_celery_queue(queue, thresholds) for queue in sample.queues})
