"""One sample of RQ's state in Redis, read with raw, pipelined read commands.

Key names are those rq 2.x writes (checked against rq 2.12): ``rq:queues``,
``rq:queue:<q>``, ``rq:job:<id>``, the registries ``rq:wip:<q>`` (started; rq 1.x called
it ``rq:started:<q>``), ``rq:failed:<q>``, ``rq:deferred:<q>``, ``rq:scheduled:<q>``, the
worker sets ``rq:workers:<q>`` and hashes ``rq:worker:<name>``, and ``rq:suspended``.

A sample costs three round trips whatever the number of queues, and a fixed number of
commands per queue whatever its length: no ``KEYS``, no ``LRANGE 0 -1``, and none of
RQ's helpers, which clean registries (writes, failure callbacks) or delete stale worker
keys.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from pipeline import settings

QUEUES_KEY = "rq:queues"
QUEUE_PREFIX = "rq:queue:"
JOB_PREFIX = "rq:job:"
STARTED_REGISTRY = "rq:wip:{}"
FAILED_REGISTRY = "rq:failed:{}"
DEFERRED_REGISTRY = "rq:deferred:{}"
SCHEDULED_REGISTRY = "rq:scheduled:{}"
WORKERS_BY_QUEUE = "rq:workers:{}"
SUSPENDED_KEY = "rq:suspended"
RQ_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Commands sent per queue in the second round trip (LLEN, LRANGE, 2 x ZCARD/ZCOUNT for
# started, ZCARD failed, ZCARD deferred, ZCARD/ZCOUNT scheduled, SMEMBERS workers).
COMMANDS_PER_QUEUE = 9


class ClusterModeError(Exception):
    """The server is a Redis Cluster node; RQ does not support Redis Cluster."""


@dataclass(frozen=True)
class RedisStats:
    """What ``INFO`` and ``rq:suspended`` say about the server."""

    used_memory: int
    maxmemory: int
    maxmemory_policy: str
    evicted_keys: int
    oom_rejections: int
    suspended: bool

    @property
    def memory_used_pct(self) -> float:
        """Used memory as a percentage of ``maxmemory``; 0 when there is no limit."""
        return 100.0 * self.used_memory / self.maxmemory if self.maxmemory else 0.0


@dataclass(frozen=True)
class QueueStats:
    """One queue: its list, its registries and the live workers listening to it."""

    name: str
    depth: int
    latency: float | None  # seconds the oldest of the head jobs has waited; None if unknown
    missing: int  # head ids whose job hash is gone (deleted or expired jobs)
    started: int
    abandoned: int  # started entries whose expiry has passed: the worker died mid-job
    failed: int
    deferred: int
    scheduled: int
    overdue: int  # scheduled jobs past their time by more than the grace: no scheduler running
    workers: int
    busy: int

    @property
    def idle(self) -> int:
        return self.workers - self.busy


@dataclass(frozen=True)
class Sample:
    """One sample: the server, every queue, when it was taken and how long it took."""

    taken_at: float
    duration: float
    redis: RedisStats
    queues: list[QueueStats] = field(default_factory=list)


def parse_rq_time(value: bytes | str | None) -> float | None:
    """Epoch seconds of one of RQ's ``…Z`` timestamps; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode() if isinstance(value, bytes) else value
    try:
        return datetime.strptime(text, RQ_TIME_FORMAT).replace(tzinfo=UTC).timestamp()
    except ValueError:
        return None


def _int(info: dict[str, Any], key: str) -> int:
    try:
        return int(info.get(key, 0))
    except (TypeError, ValueError):
        return 0


def _oom_rejections(info: dict[str, Any]) -> int:
    # redis-py parses "errorstat_OOM:count=3" into {"count": 3}.
    stat = info.get("errorstat_OOM")
    if isinstance(stat, dict):
        return int(stat.get("count", 0))
    return 0


def redis_stats(info: dict[str, Any], suspended: bool) -> RedisStats:
    """The server's figures from a parsed ``INFO`` (all default sections)."""
    return RedisStats(
        used_memory=_int(info, "used_memory"),
        maxmemory=_int(info, "maxmemory"),
        maxmemory_policy=str(info.get("maxmemory_policy", "unknown")),
        evicted_keys=_int(info, "evicted_keys"),
        oom_rejections=_oom_rejections(info),
        suspended=suspended,
    )


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def _raise_first_error(results: list[Any]) -> None:
    for result in results:
        if isinstance(result, Exception):
            raise result


def take_sample(
    connection: Redis,
    queues: Sequence[str] | None = None,
    head: int = settings.HEAD.default,
    scheduled_grace: float = settings.SCHEDULED_GRACE.default,
    worker_ttl: float = settings.WORKER_TTL.default,
) -> Sample:
    """Read one sample in three pipelined round trips.

    ``queues`` limits the sample to those queue names (default: every queue in
    ``rq:queues``). The first ``head`` ids of each queue give its latency. A worker counts
    when its hash still exists and its last heartbeat is at most ``worker_ttl`` seconds
    old. Raises ``ClusterModeError`` on a Redis Cluster node, and redis-py's errors when
    Redis cannot be read.
    """
    started = time.perf_counter()
    taken_at = time.time()

    # Round trip 1: the server, the suspension flag, the queue names.
    pipe = connection.pipeline(transaction=False)
    pipe.info()
    pipe.exists(SUSPENDED_KEY)
    if queues is None:
        pipe.smembers(QUEUES_KEY)
    first = pipe.execute(raise_on_error=False)
    info = first[0]
    if isinstance(info, dict) and str(info.get("cluster_enabled", "0")) == "1":
        raise ClusterModeError("Redis Cluster is not supported by RQ")
    _raise_first_error(first)
    if queues is None:
        names = sorted(_text(key)[len(QUEUE_PREFIX) :] for key in first[2] if _text(key).startswith(QUEUE_PREFIX))
    else:
        names = list(queues)

    # Round trip 2: a fixed set of commands per queue.
    now = time.time()
    pipe = connection.pipeline(transaction=False)
    for name in names:
        pipe.llen(QUEUE_PREFIX + name)
        pipe.lrange(QUEUE_PREFIX + name, 0, head - 1)
        pipe.zcard(STARTED_REGISTRY.format(name))
        pipe.zcount(STARTED_REGISTRY.format(name), "-inf", f"({now}")
        pipe.zcard(FAILED_REGISTRY.format(name))
        pipe.zcard(DEFERRED_REGISTRY.format(name))
        pipe.zcard(SCHEDULED_REGISTRY.format(name))
        pipe.zcount(SCHEDULED_REGISTRY.format(name), "-inf", f"({now - scheduled_grace}")
        pipe.smembers(WORKERS_BY_QUEUE.format(name))
    second = pipe.execute() if names else []
    rows = [second[i : i + COMMANDS_PER_QUEUE] for i in range(0, len(second), COMMANDS_PER_QUEUE)]

    # Round trip 3: enqueued_at of the head jobs, state and heartbeat of the workers.
    workers = sorted({_text(key) for row in rows for key in row[8]})
    pipe = connection.pipeline(transaction=False)
    for row in rows:
        for job_id in row[1]:
            pipe.hmget(JOB_PREFIX + _text(job_id), ["enqueued_at", "created_at"])
    for key in workers:
        pipe.hmget(key, ["state", "last_heartbeat"])
    third = pipe.execute() if len(pipe) else []
    now = time.time()

    heads = iter(third)
    states = dict(zip(workers, third[len(third) - len(workers) :], strict=True)) if workers else {}
    live: dict[str, bool] = {}
    for key, (state, heartbeat) in states.items():
        beat = parse_rq_time(heartbeat)
        live[key] = state is not None and beat is not None and now - beat <= worker_ttl

    result = []
    for name, row in zip(names, rows, strict=True):
        depth, head_ids, started_count, abandoned, failed, deferred, scheduled, overdue, members = row
        missing, oldest = 0, None
        for _ in head_ids:
            enqueued_at, created_at = next(heads)
            if enqueued_at is None and created_at is None:
                missing += 1
                continue
            moment = parse_rq_time(enqueued_at)
            if moment is not None and (oldest is None or moment < oldest):
                oldest = moment
        listening = [_text(key) for key in members if live.get(_text(key))]
        busy = sum(1 for key in listening if _text(states[key][0]) == "busy")
        result.append(
            QueueStats(
                name=name,
                depth=depth,
                latency=max(0.0, now - oldest) if oldest is not None else (0.0 if depth == 0 else None),
                missing=missing,
                started=started_count,
                abandoned=abandoned,
                failed=failed,
                deferred=deferred,
                scheduled=scheduled,
                overdue=overdue,
                workers=len(listening),
                busy=busy,
            )
        )
    stats = redis_stats(info, bool(first[1]))
    return Sample(taken_at=taken_at, duration=time.perf_counter() - started, redis=stats, queues=result)
