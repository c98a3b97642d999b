"""Celery's queues on one broker as a source of the monitor, alone or beside RQ's.

It follows the monitor's flow (``celery_redis``/``rabbitmq`` sample → ``celery_judge`` →
``celery_write``) and its faults are those of RQ's (``rq_source``): each failed attempt
writes one ``critical`` error line, stderr gets one line per change of state, and the loop
goes on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis

from pipeline.lines.queue import CRITICAL

from .celery_judge import judge_celery
from .celery_options import CeleryConfig
from .celery_redis import CeleryRedisSample, take_celery_redis_sample
from .celery_write import celery_error_fields, celery_fields
from .metrics import SourceState
from .options import MonitorConfig
from .output import Output
from .rabbitmq import ApiError, RabbitSample, take_rabbit_sample
from .rq_source import Problems, classify, one_line, redis_label


def error_of(exc: BaseException) -> tuple[str, str]:
    """The ``Error:`` word and the one-line reason of a failed Celery sample."""
    if isinstance(exc, ApiError):
        return exc.kind, " ".join(str(exc).split())
    return classify(exc), one_line(exc, keys="Celery's keys")


@dataclass
class CelerySource:
    """Celery's broker: its connection (Redis) or API (RabbitMQ), the last good sample, the current fault."""

    config: MonitorConfig
    celery: CeleryConfig
    connection: Redis | None  # Redis only
    output: Output
    previous: CeleryRedisSample | RabbitSample | None = None
    fault: str | None = None
    metrics: SourceState | None = None  # what --metrics-port serves of this source (pipeline.monitor.serve)

    @property
    def label(self) -> str:
        if self.connection is not None:
            return redis_label(self.connection)
        return self.celery.api.label if self.celery.api else "?"

    def sample(self) -> CeleryRedisSample | RabbitSample:
        queues = self.celery.queues
        if self.connection is not None:
            return take_celery_redis_sample(self.connection, self.celery.layout, queues)
        assert self.celery.api is not None
        return take_rabbit_sample(self.celery.api, queues)

    def step(self) -> bool:
        """Sample once and write its lines, or the error line; True when the sample worked."""
        name, broker = self.config.name, self.celery.broker
        try:
            sample = self.sample()
        except Exception as exc:  # whatever the broker answers, the loop goes on and says why
            kind, reason = error_of(exc)
            self.output.write([celery_error_fields(name, broker, self.label, kind, reason)], time.time())
            if self.metrics is not None:
                self.metrics.record_error(kind)
            if self.fault != kind:
                retry = "" if self.config.once else "; retrying with backoff"
                self.output.say(f"cannot sample Celery's {broker} at {self.label} ({kind}): {reason}{retry}")
            self.fault = kind
            return False
        if self.fault is not None:
            self.output.say(f"Celery's {broker} at {self.label} can be sampled again")
            self.fault = None
        judgement = judge_celery(sample, self.previous, self.config.thresholds)
        self.output.write(celery_fields(sample, judgement, name, self.label), sample.taken_at)
        if self.metrics is not None:
            self.metrics.record(sample, judgement)
        self.previous = sample
        return True

    def check(self, window: float) -> tuple[Problems, str]:
        """The problems over ``window`` seconds (two samples), or the failure as one critical problem;
        and a summary of what was sampled, for the ``OK`` line."""
        try:
            sample = self.sample()
            first: CeleryRedisSample | RabbitSample | None = None
            if window > 0:
                time.sleep(window)
                first, sample = sample, self.sample()
        except Exception as exc:  # whatever the broker answers, --check says critical in one line
            kind, reason = error_of(exc)
            return [(CRITICAL, f"cannot sample Celery's {self.celery.broker} at {self.label} ({kind}): {reason}")], ""
        summary = f"celery {self.celery.broker} {len(sample.queues)} queues"
        return judge_celery(sample, first, self.config.thresholds).problems(), summary
