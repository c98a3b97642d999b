"""One sample of RQ's state in Redis, read with raw, pipelined read commands.

Keys are RQ's (``rq_keys``).

A sample costs three round trips whatever the number of queues, and a fixed number of
commands per queue whatever its length: no ``KEYS``, no ``LRANGE 0 -1``, and none of
RQ's helpers, which clean registries (writes, failure callbacks) or delete stale worker
keys.

One bad key never costs the whole sample: a key of the wrong type (``WRONGTYPE``), a
worker set listing something that is not a worker key, or a queue name that is not UTF-8
becomes a fault of the queue it belongs to (``QueueStats.faults``), and the sample goes on.
Only then, a fourth round trip asks the ``TYPE`` of each key of the wrong type, for the
reason. Keys are sent as the bytes Redis holds, so a name that is not UTF-8 is still read.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from redis import Redis

from pipeline import settings

from .rq_keys import (
    COMMANDS_PER_QUEUE,
    JOB_PREFIX,
    QUEUE_PREFIX,
    QUEUES_KEY,
    REGISTRIES,
    ROW_TYPES,
    RQ_TIME_FORMAT,
    SUSPENDED_KEY,
    WORKER_PREFIX,
    WORKERS_BY_QUEUE,
    BadKeys,
    raw,
    shown,
    text,
)


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
    # Why some of the figures could not be read: keys of the wrong type, a name that is not
    # UTF-8, a worker set listing something else than worker keys; each one reason, data escaped.
    faults: tuple[str, ...] = ()
    known: bool = True  # listed in rq:queues (a queue named with --queues may not be)

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
    faults: tuple[str, ...] = ()  # keys no queue owns that could not be read: rq:queues of the wrong type


def parse_rq_time(value: bytes | str | None) -> float | None:
    """Epoch seconds of one of RQ's ``…Z`` timestamps; None when absent or unreadable."""
    if not value:
        return None
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value  # not UTF-8: unreadable
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
    """Read one sample in three pipelined round trips (four when a key is of the wrong type).

    ``queues`` limits the sample to those queue names (default: every queue in
    ``rq:queues``); a name ``rq:queues`` does not list is sampled all the same, marked
    unknown. The first ``head`` ids of each queue give its latency. A worker counts when
    its hash still exists and its last heartbeat is at most ``worker_ttl`` seconds old.
    Raises ``ClusterModeError`` on a Redis Cluster node, and redis-py's errors when Redis
    cannot be read (a key of the wrong type is not one: see the module).
    """
    started = time.perf_counter()
    taken_at = time.time()
    bad = BadKeys()
    queues_key, queue_prefix = QUEUES_KEY.encode(), QUEUE_PREFIX.encode()

    # Round trip 1: the server, the suspension flag, the queue names.
    pipe = connection.pipeline(transaction=False)
    pipe.info()
    pipe.exists(SUSPENDED_KEY)
    pipe.smembers(QUEUES_KEY)
    first = pipe.execute(raise_on_error=False)
    info = first[0]
    if isinstance(info, dict) and str(info.get("cluster_enabled", "0")) == "1":
        raise ClusterModeError("Redis Cluster is not supported by RQ")
    _raise_first_error(first[:2])
    listed = bad.read(first[2], queues_key, "set")
    known = {raw(key) for key in listed or ()}
    if queues is None:
        names = sorted((key[len(queue_prefix) :] for key in known if key.startswith(queue_prefix)), key=text)
    else:
        names = [raw(name) for name in queues]

    # Round trip 2: a fixed set of commands per queue.
    now = time.time()
    pipe = connection.pipeline(transaction=False)
    keys_of: list[tuple[bytes, ...]] = []
    for name in names:
        queue, wip, failed, deferred, scheduled, workers = (
            prefix.encode() + name
            for prefix in (QUEUE_PREFIX, *(key.format("") for key in REGISTRIES), WORKERS_BY_QUEUE.format(""))
        )
        keys = (queue, queue, wip, wip, failed, deferred, scheduled, scheduled, workers)  # as ROW_TYPES
        keys_of.append(keys)
        pipe.llen(keys[0])
        pipe.lrange(keys[1], 0, head - 1)
        pipe.zcard(keys[2])
        pipe.zcount(keys[3], "-inf", f"({now}")
        pipe.zcard(keys[4])
        pipe.zcard(keys[5])
        pipe.zcard(keys[6])
        pipe.zcount(keys[7], "-inf", f"({now - scheduled_grace}")
        pipe.smembers(keys[8])
    second = pipe.execute(raise_on_error=False) if names else []
    rows = []
    for number, queue_keys in enumerate(keys_of):
        results = second[number * COMMANDS_PER_QUEUE : (number + 1) * COMMANDS_PER_QUEUE]
        rows.append(
            [bad.read(result, key, kind) for result, key, kind in zip(results, queue_keys, ROW_TYPES, strict=True)]
        )

    # Round trip 3: enqueued_at of the head jobs, state and heartbeat of the workers.
    worker_prefix = WORKER_PREFIX.encode()
    worker_keys = sorted({raw(key) for row in rows for key in row[8] or () if raw(key).startswith(worker_prefix)})
    pipe = connection.pipeline(transaction=False)
    job_keys = [[JOB_PREFIX.encode() + raw(job_id) for job_id in row[1] or ()] for row in rows]
    for head_keys in job_keys:
        for key in head_keys:
            pipe.hmget(key, ["enqueued_at", "created_at"])
    for key in worker_keys:
        pipe.hmget(key, ["state", "last_heartbeat"])
    third = pipe.execute(raise_on_error=False) if len(pipe) else []
    now = time.time()

    heads = iter(third)
    job_replies = [[bad.read(next(heads), key, "hash") for key in head_keys] for head_keys in job_keys]
    states = {key: bad.read(reply, key, "hash") for key, reply in zip(worker_keys, heads, strict=True)}
    live: dict[bytes, bool] = {}
    for key, reply in states.items():
        state, heartbeat = reply or (None, None)
        beat = parse_rq_time(heartbeat)
        live[key] = state is not None and beat is not None and now - beat <= worker_ttl
    reasons = bad.reasons(connection)  # a fourth round trip, only when a key was of the wrong type

    result = []
    for name, queue_keys, row, jobs, replies in zip(names, keys_of, rows, job_keys, job_replies, strict=True):
        depth, _, started_count, abandoned, failed, deferred, scheduled, overdue, members = row
        missing, oldest = 0, None
        for reply in replies:
            if reply is None:  # a job key of the wrong type: neither missing nor a time
                continue
            enqueued_at, created_at = reply
            if enqueued_at is None and created_at is None:
                missing += 1
                continue
            moment = parse_rq_time(enqueued_at)
            if moment is not None and (oldest is None or moment < oldest):
                oldest = moment
        members = [raw(key) for key in members or ()]
        listening = [key for key in members if live.get(key)]
        busy = sum(1 for key in listening if text(states[key][0]) == "busy")
        latency = max(0.0, now - oldest) if oldest is not None else (0.0 if not depth else None)
        faults: list[str] = []
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            faults.append("queue name is not UTF-8")
        owned = dict.fromkeys([*queue_keys, *jobs, *sorted(key for key in members if key in states)])
        faults += [reasons[key] for key in owned if key in reasons]
        strays = sorted(key for key in members if not key.startswith(worker_prefix))
        faults += [f"{shown(queue_keys[8])} lists {shown(key)}, not a worker key" for key in strays]
        result.append(
            QueueStats(
                name=text(name),
                depth=depth or 0,
                latency=None if queue_keys[0] in reasons else latency,  # None: the queue itself could not be read
                missing=missing,
                started=started_count or 0,
                abandoned=abandoned or 0,
                failed=failed or 0,
                deferred=deferred or 0,
                scheduled=scheduled or 0,
                overdue=overdue or 0,
                workers=len(listening),
                busy=busy,
                faults=tuple(faults),
                known=listed is None or queue_prefix + name in known,
            )
        )
    stats = redis_stats(info, bool(first[1]))
    sample_faults = (reasons[queues_key],) if queues_key in reasons else ()
    duration = time.perf_counter() - started
    return Sample(taken_at=taken_at, duration=duration, redis=stats, queues=result, faults=sample_faults)
