"""What the metrics endpoint serves: each source's last judged sample, as Prometheus families and ``/queues`` JSON.

Pure Python, no ``prometheus_client``: ``serve`` turns these families into the text format.
A scrape reads only what the loop last recorded (``MetricsState``); it never touches a broker.

A source is one task system on one broker (RQ's Redis; Celery's Redis or RabbitMQ). Every
series carries ``system`` (``rq``, ``celery``) and ``broker`` (a URL without credentials),
so a queue called ``default`` in both systems is two series. Each source turns its samples
into families and a ``/queues`` part through its ``View``: RQ's is here (``RQ_VIEW``),
Celery's in ``celery_metrics``; the series both systems have share one ``Spec``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.lines.queue import STATUSES

from .judge import Judgement, Thresholds
from .sample import RedisStats, Sample

PREFIX = "task_time_"
RQ = "rq"
GAUGE = "gauge"
COUNTER = "counter"


@dataclass(frozen=True)
class Family:
    """One metric: ``name`` (a counter's without ``_total``), its type, help and ``(labels, value)`` samples."""

    name: str
    kind: str
    help: str
    samples: list[tuple[dict[str, str], float]] = field(default_factory=list)

    def add(self, labels: dict[str, str], value: float) -> None:
        self.samples.append((labels, float(value)))


@dataclass(frozen=True)
class Spec:
    """A metric's name (without the prefix), type and help: one per series, whatever the system."""

    name: str
    kind: str
    help: str

    def family(self) -> Family:
        """An empty family of this metric."""
        return Family(PREFIX + self.name, self.kind, self.help)


# The series every source has.
SAMPLE_DURATION = Spec("monitor_sample_duration_seconds", GAUGE, "seconds the last good sample took")
LAST_SAMPLE = Spec("monitor_last_sample_timestamp_seconds", GAUGE, "when the last good sample was taken, Unix time")
SAMPLES = Spec("monitor_samples", COUNTER, "good samples since the monitor started")
SAMPLE_ERRORS = Spec("monitor_sample_errors", COUNTER, "failed samples since the monitor started, by Error: word")
BROKER_UP = Spec("broker_up", GAUGE, "1 when the last attempt to sample the broker worked, else 0")
# Broker series; Redis's are the same for RQ and Celery.
MEMORY_RATIO = Spec("broker_memory_used_ratio", GAUGE, "used memory / its limit (0 without a limit)")
MEMORY_BYTES = Spec("broker_memory_used_bytes", GAUGE, "memory used: Redis's used_memory, a RabbitMQ node's mem_used")
MEMORY_LIMIT = Spec("broker_maxmemory_bytes", GAUGE, "Redis's maxmemory or a RabbitMQ node's mem_limit; 0 = no limit")
EVICTED = Spec("broker_evicted_keys", COUNTER, "keys evicted since Redis started")
OOM_REJECTED = Spec("broker_oom_rejections", COUNTER, "commands refused with OOM since Redis started")
BROKER_STATUS = Spec("broker_status", GAUGE, "the broker line's status: 0 ok, 1 warn, 2 critical")
# Queue series both systems have.
LATENCY = Spec("queue_latency_seconds", GAUGE, "seconds the oldest waiting task has waited (absent when unknown)")
LATENCY_LIMIT = Spec("queue_latency_limit_seconds", GAUGE, "the monitor's latency limit for the queue (--max-latency)")
DEPTH = Spec("queue_depth", GAUGE, "tasks waiting in the queue")
QUEUE_STATUS = Spec("queue_status", GAUGE, "the queue line's status: 0 ok, 1 warn, 2 critical")


@dataclass(frozen=True)
class Snapshot:
    """The last good sample of a source and its judgement: replaced whole by the loop, read whole by a scrape."""

    sample: Any
    judgement: Any


@dataclass(frozen=True)
class View:
    """How one system's snapshot is served: its families, and its ``/queues`` status and queue objects."""

    families: Callable[[dict[str, str], Snapshot, Thresholds], list[Family]]
    status: Callable[[Snapshot], str]
    queues: Callable[[Snapshot], dict[str, dict[str, Any]]]


class SourceState:
    """What the loop records for one source and the HTTP thread reads: its last snapshot and counts."""

    def __init__(self, system: str, broker: str, view: View, lock: threading.Lock) -> None:
        self.system, self.broker, self.view = system, broker, view
        self.snapshot: Snapshot | None = None
        self.samples = 0
        self.errors: dict[str, int] = {}
        self.up = False
        self._lock = lock

    def record(self, sample: Any, judgement: Any) -> None:
        """A sample worked: it is what the endpoint serves from now on."""
        with self._lock:
            self.snapshot = Snapshot(sample, judgement)
            self.samples += 1
            self.up = True

    def record_error(self, kind: str) -> None:
        """A sample failed (``kind`` is the line's ``Error:`` word); the last good sample stays served."""
        with self._lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1
            self.up = False

    def read(self) -> tuple[Snapshot | None, int, dict[str, int], bool]:
        with self._lock:
            return self.snapshot, self.samples, dict(self.errors), self.up


class MetricsState:
    """Every source the monitor samples, in the order they were added."""

    def __init__(self, monitor: str, thresholds: Thresholds) -> None:
        self.monitor = monitor
        self.thresholds = thresholds
        self.sources: list[SourceState] = []
        self._lock = threading.Lock()

    def source(self, system: str, broker: str, view: View) -> SourceState:
        """Add a source: the loop records its samples on the ``SourceState`` returned."""
        added = SourceState(system, broker, view, self._lock)
        self.sources.append(added)
        return added


def broker_label(redis_label: str) -> str:
    """The ``broker`` label of a Redis: the lines' ``Redis:`` field as a URL without credentials."""
    return f"redis://{redis_label}"


def families(state: MetricsState) -> list[Family]:
    """Every metric of every source's last snapshot, with the monitor's own; one family per name."""
    merged: dict[str, Family] = {}
    for source in state.sources:
        for item in _source_families(source, state.thresholds):
            kept = merged.setdefault(item.name, item)
            if kept is not item:
                kept.samples.extend(item.samples)
    return list(merged.values())


def _source_families(source: SourceState, thresholds: Thresholds) -> list[Family]:
    snapshot, samples, errors, up = source.read()
    base = {"system": source.system, "broker": source.broker}
    duration, last, count, failed, broker_up = (
        spec.family() for spec in (SAMPLE_DURATION, LAST_SAMPLE, SAMPLES, SAMPLE_ERRORS, BROKER_UP)
    )
    count.add(base, samples)
    broker_up.add(base, 1 if up else 0)
    for kind, number in sorted(errors.items()):
        failed.add({**base, "error": kind}, number)
    monitor = [duration, last, count, failed, broker_up]
    if snapshot is None:
        return monitor
    duration.add(base, snapshot.sample.duration)
    last.add(base, snapshot.sample.taken_at)
    return monitor + source.view.families(base, snapshot, thresholds)


def status_value(status: str) -> int:
    """A line's status as a number: 0 ok, 1 warn, 2 critical."""
    return STATUSES.index(status)


def add_rows(labels: dict[str, str], rows: list[tuple[Spec, float]]) -> list[Family]:
    """One family per ``(spec, value)`` row, each with one sample labelled ``labels``."""
    found = []
    for spec, value in rows:
        item = spec.family()
        item.add(labels, value)
        found.append(item)
    return found


def redis_rows(stats: RedisStats) -> list[tuple[Spec, float]]:
    """The broker series of a Redis, the same for RQ and Celery: memory, evictions, OOM rejections."""
    return [
        (MEMORY_RATIO, stats.memory_used_pct / 100.0),
        (MEMORY_BYTES, stats.used_memory),
        (MEMORY_LIMIT, stats.maxmemory),
        (EVICTED, stats.evicted_keys),
        (OOM_REJECTED, stats.oom_rejections),
    ]


def queue_families(
    base: dict[str, str],
    thresholds: Thresholds,
    queues: list[tuple[str, float | None, int]],
    statuses: dict[str, str],
) -> list[Family]:
    """The queue series every system has, from ``(name, latency, depth)`` rows and each queue's status."""
    latency, limit, depth, status = (spec.family() for spec in (LATENCY, LATENCY_LIMIT, DEPTH, QUEUE_STATUS))
    for name, seconds, waiting in queues:
        labels = {**base, "queue": name}
        if seconds is not None:
            latency.add(labels, seconds)
        if (most := thresholds.latency_limit(name)) is not None:
            limit.add(labels, most)
        depth.add(labels, waiting)
        status.add(labels, status_value(statuses[name]))
    return [latency, limit, depth, status]


def queues_document(state: MetricsState, now: float | None = None) -> dict[str, object] | None:
    """The ``/queues`` JSON for KEDA's metrics-api scaler: one object per system sampled; None before any sample."""
    document: dict[str, object] = {"monitor": state.monitor}
    moment = time.time() if now is None else now
    for source in state.sources:
        snapshot, _, _, up = source.read()
        if snapshot is None:
            continue
        queues = source.view.queues(snapshot)
        latencies = [queue["latency"] for queue in queues.values() if queue["latency"] is not None]
        document[source.system] = {
            "broker": source.broker,
            "up": up,
            "taken_at": snapshot.sample.taken_at,
            "age": max(0.0, moment - snapshot.sample.taken_at),
            "status": source.view.status(snapshot),
            "max_latency": max(latencies, default=0.0),
            "total_depth": sum(queue["depth"] for queue in queues.values()),
            "queues": queues,
        }
    return document if len(document) > 1 else None


# ----------------------------------------------------------------------- RQ's view


def _rq_families(base: dict[str, str], snapshot: Snapshot, thresholds: Thresholds) -> list[Family]:
    sample: Sample = snapshot.sample
    judgement: Judgement = snapshot.judgement
    stats = sample.redis
    suspended = Spec("broker_suspended", GAUGE, "1 while rq suspend holds the workers")
    status = status_value(judgement.redis.status)
    found = add_rows(base, [*redis_rows(stats), (suspended, int(stats.suspended)), (BROKER_STATUS, status)])
    statuses = {name: verdict.status for name, verdict in judgement.queues.items()}
    found += queue_families(base, thresholds, [(q.name, q.latency, q.depth) for q in sample.queues], statuses)
    workers = Spec("queue_workers", GAUGE, "live workers listening to the queue, by state (busy, idle)").family()
    abandoned = Spec("queue_abandoned_jobs", GAUGE, "started jobs whose worker died mid-job").family()
    failed = Spec("queue_failed_jobs", GAUGE, "jobs in the failed registry").family()
    overdue = Spec("queue_overdue_jobs", GAUGE, "scheduled jobs past their time by more than the grace").family()
    for queue in sample.queues:
        labels = {**base, "queue": queue.name}
        workers.add({**labels, "state": "busy"}, queue.busy)
        workers.add({**labels, "state": "idle"}, queue.idle)
        abandoned.add(labels, queue.abandoned)
        failed.add(labels, queue.failed)
        overdue.add(labels, queue.overdue)
    return [*found, workers, abandoned, failed, overdue]


def _rq_queues(snapshot: Snapshot) -> dict[str, dict[str, Any]]:
    sample: Sample = snapshot.sample
    return {
        queue.name: {
            "latency": queue.latency,
            "depth": queue.depth,
            "workers": queue.workers,
            "busy": queue.busy,
            "idle": queue.idle,
            "abandoned": queue.abandoned,
            "failed": queue.failed,
            "status": snapshot.judgement.queues[queue.name].status,
        }
        for queue in sample.queues
    }


RQ_VIEW = View(_rq_families, lambda snapshot: snapshot.judgement.redis.status, _rq_queues)
