"""RQ's queues on one Redis as a source of the monitor (``source.BrokerSource``).

A Redis Cluster node raises ``ClusterModeError``: RQ does not support Redis Cluster, so it
ends the monitor (``cli.refuse_cluster``) instead of being retried.
"""

from __future__ import annotations

from redis import Redis
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from .judge import Judgement, judge
from .options import MonitorConfig
from .output import Output
from .sample import ClusterModeError, Sample, take_sample
from .source import BrokerSource
from .write import error_fields, sample_fields


def classify(exc: BaseException) -> str:
    """The ``Error:`` word for a failed sample of a Redis."""
    text = str(exc)
    if isinstance(exc, ClusterModeError):
        return "cluster"
    if isinstance(exc, AuthenticationError) or text.startswith(("WRONGPASS", "NOAUTH", "invalid username")):
        return "auth"
    if isinstance(exc, NoPermissionError) or text.startswith("NOPERM"):
        return "permission"
    if isinstance(exc, RedisConnectionError | RedisTimeoutError | OSError):
        return "unreachable"
    return "error"


def one_line(exc: BaseException, keys: str = "rq:*") -> str:
    """The reason of a failed sample on one line; a permission error says what the ACL user needs on ``keys``."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if classify(exc) == "permission":
        text = f"NOPERM {text} (the monitor's ACL user needs +info and read commands on {keys})"
    return text


def redis_label(connection: Redis) -> str:
    """``host:port/db`` (or the socket path) of the connection, never its credentials."""
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"{kwargs['path']}/{kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


class RqSource(BrokerSource):
    """RQ's queues on the Redis of ``connection``."""

    fatal = (ClusterModeError,)

    def __init__(self, config: MonitorConfig, connection: Redis, output: Output) -> None:
        super().__init__(config, output)
        self.connection = connection

    @property
    def label(self) -> str:
        return redis_label(self.connection)

    @property
    def subject(self) -> str:
        return f"Redis at {self.label}"

    def sample(self) -> Sample:
        config = self.config
        return take_sample(self.connection, config.queues, config.head, config.scheduled_grace, config.worker_ttl)

    def judge(self, sample: Sample, previous: Sample | None) -> Judgement:
        return judge(sample, previous, self.config.thresholds)

    def lines(self, sample: Sample, judgement: Judgement) -> list[str]:
        return sample_fields(sample, judgement, self.config.name, self.label)

    def error_line(self, kind: str, reason: str) -> str:
        return error_fields(self.config.name, self.label, kind, reason)

    def error_of(self, exc: BaseException) -> tuple[str, str]:
        return classify(exc), one_line(exc)

    def summary(self, sample: Sample) -> str:
        stats = sample.redis
        memory = f"{stats.memory_used_pct:.1f}% of maxmemory" if stats.maxmemory else "no maxmemory"
        return f"{len(sample.queues)} queues, memory {memory}"
