"""RQ's queues on one Redis as a source of the monitor: sample, judge, write, and say when it fails.

Faults (Redis unreachable, wrong password, an ACL too narrow) never end the loop: each
failed attempt writes a ``critical`` error line, so the gap shows in Kibana, and stderr
gets one line per change of state. A Redis Cluster node raises ``ClusterModeError``: RQ
does not support Redis Cluster, and it is not retried.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline.lines.queue import CRITICAL

from .judge import judge
from .metrics import SourceState
from .options import MonitorConfig
from .output import Output
from .sample import ClusterModeError, Sample, take_sample
from .write import error_fields, sample_fields

Problems = list[tuple[str, str]]


def classify(exc: BaseException) -> str:
    """The ``Error:`` word for a failed sample."""
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


@dataclass
class RqSource:
    """RQ's queues: the Redis connection, the last good sample and the current fault, if any."""

    config: MonitorConfig
    connection: Redis
    output: Output
    previous: Sample | None = None
    fault: str | None = None
    metrics: SourceState | None = None  # what --metrics-port serves of this source (pipeline.monitor.serve)

    @property
    def label(self) -> str:
        return redis_label(self.connection)

    def sample(self) -> Sample:
        config = self.config
        return take_sample(self.connection, config.queues, config.head, config.scheduled_grace, config.worker_ttl)

    def step(self) -> bool:
        """Sample once and write its lines, or the error line; True when the sample worked.

        Raises ``ClusterModeError``: that one is not retried.
        """
        try:
            sample = self.sample()
        except ClusterModeError:
            raise
        except Exception as exc:  # whatever Redis answers, the loop goes on and says why
            kind, reason = classify(exc), one_line(exc)
            self.output.write([error_fields(self.config.name, self.label, kind, reason)], time.time())
            if self.metrics is not None:
                self.metrics.record_error(kind)
            if self.fault != kind:  # one stderr line per change of state, not per attempt
                retry = "" if self.config.once else "; retrying with backoff"
                self.output.say(f"cannot sample Redis at {self.label} ({kind}): {reason}{retry}")
            self.fault = kind
            return False
        if self.fault is not None:
            self.output.say(f"Redis at {self.label} can be sampled again")
            self.fault = None
        judgement = judge(sample, self.previous, self.config.thresholds)
        self.output.write(sample_fields(sample, judgement, self.config.name, self.label), sample.taken_at)
        if self.metrics is not None:
            self.metrics.record(sample, judgement)
        self.previous = sample
        return True

    def check(self, window: float) -> tuple[Problems, str]:
        """The problems over ``window`` seconds (two samples), or the failure as one critical problem;
        and a summary of what was sampled, for the ``OK`` line."""
        try:
            sample = self.sample()
            first: Sample | None = None
            if window > 0:
                time.sleep(window)
                first, sample = sample, self.sample()
        except ClusterModeError:
            raise
        except Exception as exc:  # whatever Redis answers, --check says critical in one line, never a traceback
            return [(CRITICAL, f"cannot sample Redis at {self.label} ({classify(exc)}): {one_line(exc)}")], ""
        stats = sample.redis
        memory = f"{stats.memory_used_pct:.1f}% of maxmemory" if stats.maxmemory else "no maxmemory"
        summary = f"{len(sample.queues)} queues, memory {memory}"
        return judge(sample, first, self.config.thresholds).problems(), summary
