"""What the metrics endpoint serves: the last judged sample as Prometheus families and as ``/queues`` JSON.

Pure Python, no ``prometheus_client``: ``serve`` turns these families into the text format.
A scrape reads only what the loop last recorded (``MetricsState``); it never touches Redis.

Every series carries ``system="rq"`` and ``broker`` (``redis://host:port/db``, never the
credentials), so another broker or task system can be added beside it later.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from pipeline.lines.queue import STATUSES

from .judge import Judgement, Thresholds
from .sample import Sample

PREFIX = "task_time_"
SYSTEM = "rq"
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
class Snapshot:
    """The last good sample and its judgement: replaced whole by the loop, read whole by a scrape."""

    sample: Sample
    judgement: Judgement


class MetricsState:
    """What the loop records and the HTTP thread reads: the last snapshot, sample and error counts."""

    def __init__(self, broker: str, monitor: str, thresholds: Thresholds) -> None:
        self.broker = broker
        self.monitor = monitor
        self.thresholds = thresholds
        self.snapshot: Snapshot | None = None
        self.samples = 0
        self.errors: dict[str, int] = {}
        self.up = False
        self._lock = threading.Lock()

    def record(self, sample: Sample, judgement: Judgement) -> None:
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


def broker_label(redis_label: str) -> str:
    """The ``broker`` label: the monitor's ``Redis:`` field as a URL without credentials."""
    return f"redis://{redis_label}"


def families(state: MetricsState) -> list[Family]:
    """Every metric of the last snapshot, with the monitor's own."""
    snapshot, samples, errors, up = state.read()
    base = {"system": SYSTEM, "broker": state.broker}

    duration = family("monitor_sample_duration_seconds", GAUGE, "seconds the last good sample took")
    last = family("monitor_last_sample_timestamp_seconds", GAUGE, "when the last good sample was taken, Unix time")
    count = family("monitor_samples", COUNTER, "good samples since the monitor started")
    failed = family("monitor_sample_errors", COUNTER, "failed samples since the monitor started, by Error: word")
    broker_up = family("broker_up", GAUGE, "1 when the last attempt to sample the broker worked, else 0")
    count.add(base, samples)
    broker_up.add(base, 1 if up else 0)
    for kind, number in sorted(errors.items()):
        failed.add({**base, "error": kind}, number)
    monitor = [duration, last, count, failed, broker_up]
    if snapshot is None:
        return monitor
    sample, judgement = snapshot.sample, snapshot.judgement
    duration.add(base, sample.duration)
    last.add(base, sample.taken_at)
    return monitor + _broker_families(base, sample, judgement) + _queue_families(base, state, snapshot)


def family(name: str, kind: str, help_text: str) -> Family:
    """An empty family named with the prefix."""
    return Family(PREFIX + name, kind, help_text)


def _broker_families(base: dict[str, str], sample: Sample, judgement: Judgement) -> list[Family]:
    stats = sample.redis
    rows: list[tuple[Family, float]] = [
        (
            family("broker_memory_used_ratio", GAUGE, "used memory / maxmemory (0 without maxmemory)"),
            stats.memory_used_pct / 100.0,
        ),
        (family("broker_memory_used_bytes", GAUGE, "INFO used_memory"), stats.used_memory),
        (family("broker_maxmemory_bytes", GAUGE, "maxmemory; 0 = no limit"), stats.maxmemory),
        (family("broker_evicted_keys", COUNTER, "keys evicted since Redis started"), stats.evicted_keys),
        (
            family("broker_oom_rejections", COUNTER, "commands refused with OOM since Redis started"),
            stats.oom_rejections,
        ),
        (family("broker_suspended", GAUGE, "1 while rq suspend holds the workers"), int(stats.suspended)),
        (
            family("broker_status", GAUGE, "the broker line's status: 0 ok, 1 warn, 2 critical"),
            STATUSES.index(judgement.redis.status),
        ),
    ]
    for metric, value in rows:
        metric.add(base, value)
    return [metric for metric, _ in rows]


def _queue_families(base: dict[str, str], state: MetricsState, snapshot: Snapshot) -> list[Family]:
    latency = family("queue_latency_seconds", GAUGE, "seconds the oldest head job has waited (absent when unknown)")
    limit = family("queue_latency_limit_seconds", GAUGE, "the monitor's latency limit for the queue (--max-latency)")
    depth = family("queue_depth", GAUGE, "jobs waiting in the queue")
    workers = family("queue_workers", GAUGE, "live workers listening to the queue, by state (busy, idle)")
    abandoned = family("queue_abandoned_jobs", GAUGE, "started jobs whose worker died mid-job")
    failed = family("queue_failed_jobs", GAUGE, "jobs in the failed registry")
    overdue = family("queue_overdue_jobs", GAUGE, "scheduled jobs past their time by more than the grace")
    status = family("queue_status", GAUGE, "the queue line's status: 0 ok, 1 warn, 2 critical")
    for queue in snapshot.sample.queues:
        labels = {**base, "queue": queue.name}
        if queue.latency is not None:
            latency.add(labels, queue.latency)
        if (seconds := state.thresholds.latency_limit(queue.name)) is not None:
            limit.add(labels, seconds)
        depth.add(labels, queue.depth)
        workers.add({**labels, "state": "busy"}, queue.busy)
        workers.add({**labels, "state": "idle"}, queue.idle)
        abandoned.add(labels, queue.abandoned)
        failed.add(labels, queue.failed)
        overdue.add(labels, queue.overdue)
        status.add(labels, STATUSES.index(snapshot.judgement.queues[queue.name].status))
    return [latency, limit, depth, workers, abandoned, failed, overdue, status]


def queues_document(state: MetricsState, now: float | None = None) -> dict[str, object] | None:
    """The ``/queues`` JSON for KEDA's metrics-api scaler; None before the first good sample."""
    snapshot, _, _, up = state.read()
    if snapshot is None:
        return None
    sample, judgement = snapshot.sample, snapshot.judgement
    queues: dict[str, object] = {}
    for queue in sample.queues:
        queues[queue.name] = {
            "latency": queue.latency,
            "depth": queue.depth,
            "workers": queue.workers,
            "busy": queue.busy,
            "idle": queue.idle,
            "abandoned": queue.abandoned,
            "failed": queue.failed,
            "status": judgement.queues[queue.name].status,
        }
    latencies = [queue.latency for queue in sample.queues if queue.latency is not None]
    age = (time.time() if now is None else now) - sample.taken_at
    return {
        "system": SYSTEM,
        "broker": state.broker,
        "monitor": state.monitor,
        "up": up,
        "taken_at": sample.taken_at,
        "age": max(0.0, age),
        "status": judgement.redis.status,
        "max_latency": max(latencies, default=0.0),
        "total_depth": sum(queue.depth for queue in sample.queues),
        "queues": queues,
    }
