"""Celery's queues on one broker as a source of the monitor (``source.BrokerSource``), alone or beside RQ's.

It follows the monitor's flow: ``celery_redis``/``rabbitmq`` sample → ``celery_judge`` →
``celery_write``.
"""

from __future__ import annotations

from redis import Redis

from .celery_judge import CeleryJudgement, judge_celery
from .celery_options import CeleryConfig
from .celery_redis import CeleryRedisSample, take_celery_redis_sample
from .celery_write import celery_error_fields, celery_fields
from .options import MonitorConfig
from .output import Output
from .rabbitmq import ApiError, RabbitSample, take_rabbit_sample
from .rq_source import classify, one_line, redis_label
from .source import BrokerSource

CelerySample = CeleryRedisSample | RabbitSample


def error_of(exc: BaseException) -> tuple[str, str]:
    """The ``Error:`` word and the one-line reason of a failed Celery sample."""
    if isinstance(exc, ApiError):
        return exc.kind, " ".join(str(exc).split())
    return classify(exc), one_line(exc, keys="Celery's keys")


class CelerySource(BrokerSource):
    """Celery's broker: its connection (Redis) or management API (RabbitMQ, ``celery.api``)."""

    def __init__(self, config: MonitorConfig, celery: CeleryConfig, connection: Redis | None, output: Output) -> None:
        super().__init__(config, output)
        self.celery = celery
        self.connection = connection  # Redis only

    @property
    def label(self) -> str:
        if self.connection is not None:
            return redis_label(self.connection)
        return self.celery.api.label if self.celery.api else "?"

    @property
    def subject(self) -> str:
        return f"Celery's {self.celery.broker} at {self.label}"

    def sample(self) -> CelerySample:
        queues = self.celery.queues
        if self.connection is not None:
            return take_celery_redis_sample(self.connection, self.celery.layout, queues)
        assert self.celery.api is not None
        return take_rabbit_sample(self.celery.api, queues)

    def judge(self, sample: CelerySample, previous: CelerySample | None) -> CeleryJudgement:
        return judge_celery(sample, previous, self.config.thresholds)

    def lines(self, sample: CelerySample, judgement: CeleryJudgement) -> list[str]:
        return celery_fields(sample, judgement, self.config.name, self.label)

    def error_line(self, kind: str, reason: str) -> str:
        return celery_error_fields(self.config.name, self.celery.broker, self.label, kind, reason)

    def error_of(self, exc: BaseException) -> tuple[str, str]:
        return error_of(exc)

    def summary(self, sample: CelerySample) -> str:
        return f"celery {self.celery.broker} {len(sample.queues)} queues"
