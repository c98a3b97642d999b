"""The monitor's loop and ``--check`` with a Celery broker: Celery alone, or beside RQ's queues.

``cli.main`` hands over here when ``--celery-broker`` (or its variable) is set. The Celery
source follows the monitor's flow (``celery_redis``/``rabbitmq`` sample → ``celery_judge``
→ ``celery_write``) and its faults are those of RQ's: each failed attempt writes one
``critical`` error line, stderr gets one line per change of state, attempts back off up
to ``--max-backoff``; ``--once`` exits 2 when a sample failed. ``--check`` prints one line
per problem of every source and exits 0, 1 or 2 (2 when a broker cannot be sampled).
"""

from __future__ import annotations

import signal
import sys
import time
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import RedisError

from pipeline import settings
from pipeline.appender import Appender, AppendError
from pipeline.lines.clock import LineClock, timezone_from_env
from pipeline.lines.fields import shown_name, shown_text
from pipeline.lines.queue import CRITICAL, OK

from .celery_judge import judge_celery
from .celery_options import CeleryConfig
from .celery_redis import CeleryRedisSample, take_celery_redis_sample
from .celery_write import celery_error_fields, celery_fields
from .cli import EXIT_CODES, Monitor, _one_line, classify, redis_label, refuse_cluster
from .judge import judge, worst
from .options import PROG, MonitorConfig
from .rabbitmq import ApiError, RabbitSample, take_rabbit_sample
from .sample import ClusterModeError


@dataclass
class CelerySource:
    """Celery's broker: its connection (Redis) or API (RabbitMQ), the last good sample, the current fault."""

    config: MonitorConfig
    celery: CeleryConfig
    connection: Redis | None
    writer: Monitor  # the RQ monitor's writer and stderr voice (its own Redis is unused here)
    previous: CeleryRedisSample | RabbitSample | None = None
    fault: str | None = None

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
        name = self.config.name
        try:
            sample = self.sample()
        except Exception as exc:  # whatever the broker answers, the loop goes on and says why
            kind, reason = error_of(exc)
            self.writer.write([celery_error_fields(name, self.celery.broker, self.label, kind, reason)], time.time())
            if self.fault != kind:
                retry = "" if self.config.once else "; retrying with backoff"
                self.writer.say(
                    f"cannot sample Celery's {self.celery.broker} at {self.label} ({kind}): {reason}{retry}"
                )
            self.fault = kind
            return False
        if self.fault is not None:
            self.writer.say(f"Celery's {self.celery.broker} at {self.label} can be sampled again")
            self.fault = None
        judgement = judge_celery(sample, self.previous, self.config.thresholds)
        self.writer.write(celery_fields(sample, judgement, name, self.label), sample.taken_at)
        self.previous = sample
        return True


def error_of(exc: BaseException) -> tuple[str, str]:
    """The ``Error:`` word and the one-line reason of a failed Celery sample."""
    if isinstance(exc, ApiError):
        return exc.kind, " ".join(str(exc).split())
    return classify(exc), _one_line(exc).replace("rq:*", "Celery's keys")


def _problems(source: Monitor | CelerySource, window: float) -> tuple[list[tuple[str, str]], str]:
    """One source's problems over ``window`` seconds (two samples), or its failure as one critical
    problem; and what it sampled, for the ``OK`` line."""
    try:
        first = source.sample()
        if window > 0:
            time.sleep(window)
            sample = source.sample()
        else:
            sample, first = first, None  # type: ignore[assignment]
    except ClusterModeError:
        raise
    except (RedisError, OSError, ApiError) as exc:
        if isinstance(source, CelerySource):
            kind, reason = error_of(exc)
            text = f"cannot sample Celery's {source.celery.broker} at {source.label} ({kind}): {reason}"
            return [(CRITICAL, text)], ""
        return [(CRITICAL, f"cannot sample Redis at {source.label} ({classify(exc)}): {_one_line(exc)}")], ""
    if isinstance(source, CelerySource):
        summary = f"celery {source.celery.broker} {len(sample.queues)} queues"
        return judge_celery(sample, first, source.config.thresholds).problems(), summary  # type: ignore[arg-type]
    summary = f"rq {len(sample.queues)} queues"
    return judge(sample, first, source.config.thresholds).problems(), summary  # type: ignore[arg-type]


def run_check(sources: list[Monitor | CelerySource], config: MonitorConfig) -> int:
    """Print one line per problem of every source (or one ``OK`` line) and return 0, 1 or 2."""
    results = [_problems(source, config.check_window) for source in sources]
    problems = [problem for found, _ in results for problem in found]
    for level, text in problems:
        print(f"{level.upper()} {shown_name(config.name)}: {shown_text(text)}")
    status = worst([level for level, _ in problems])
    if status == OK:
        print(f"OK {shown_name(config.name)}: " + "; ".join(summary for _, summary in results))
    return EXIT_CODES[status]


def run_loop(sources: list[Monitor | CelerySource], config: MonitorConfig) -> int:
    """Sample every source every ``--interval`` seconds until stopped; back off while any fails."""
    failures = 0
    next_at = time.monotonic()
    while True:
        ok = all([source.step() for source in sources])
        failures = 0 if ok else failures + 1
        if config.once:
            return 0 if ok else 2
        delay = config.interval if ok else min(config.max_backoff, config.interval * 2 ** (failures - 1))
        next_at = max(next_at + delay, time.monotonic()) if ok else time.monotonic() + delay
        time.sleep(max(0.0, next_at - time.monotonic()))


def main_celery(config: MonitorConfig) -> int:
    """``cli.main`` with a Celery broker: build the sources, then loop or check."""
    assert config.celery is not None
    try:
        clock = LineClock(timezone_from_env())
    except ValueError as exc:
        print(f"{PROG} {shown_name(config.name)}: {shown_text(str(exc))}", file=sys.stderr)
        return 2
    appender = None
    if not config.check:
        appender = Appender(
            config.log, describe="queue-monitor log", variable=settings.MONITOR_LOG.variable, reporter=PROG
        )
        try:
            appender.open()
        except AppendError as exc:
            print(f"{PROG} {shown_name(config.name)}: {shown_text(str(exc))}", file=sys.stderr)
            return 2
    timeouts = {"socket_timeout": 10, "socket_connect_timeout": 5}
    rq_redis = Redis.from_url(config.url, **timeouts) if config.url else Redis(**timeouts)  # type: ignore[arg-type]
    writer = Monitor(config, rq_redis, appender, clock)
    celery_redis = Redis.from_url(config.celery.broker_url, **timeouts) if config.celery.broker == "redis" else None
    sources: list[Monitor | CelerySource] = [writer] if config.url else []
    sources.append(CelerySource(config, config.celery, celery_redis, writer))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return run_check(sources, config) if config.check else run_loop(sources, config)
    except ClusterModeError:
        return refuse_cluster(writer, config)
    except KeyboardInterrupt:
        return 0
    finally:
        if appender is not None:
            appender.close()
