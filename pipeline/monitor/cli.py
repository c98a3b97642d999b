"""``python -m pipeline.monitor`` / ``rq-task-time-monitor``: the sampling loop and its faults.

Every option has an environment variable (``options``, and ``--help``). Faults (Redis
unreachable, wrong password, an ACL too narrow) never end the loop: each failed attempt
writes a ``critical`` error line to the log, so the gap shows in Kibana, stderr gets one
line per change of state, and attempts back off up to ``--max-backoff`` seconds. A Redis
Cluster node is refused at once (exit 2): RQ does not support Redis Cluster.

Exit codes: a configuration error is one line on stderr and 2, in every mode. ``--check``:
0 ok, 1 warn, 2 critical (Redis cannot be sampled is critical). ``--once``: 0 its lines
were written, 1 they could not be (disk full, log unwritable), 2 Redis could not be
sampled. The loop ends 0 on SIGTERM or Ctrl-C, and never between the two halves of a
sample: a sample's lines are one ``write``, made with SIGTERM and SIGINT held.

Everything printed that comes from data (queue names, reasons, Redis's error text) is
escaped with ``shown_name``: a queue name cannot forge an output line.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from redis import Redis
from redis.exceptions import AuthenticationError, NoPermissionError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from pipeline import settings
from pipeline.appender import Appender, AppendError
from pipeline.lines.clock import LineClock, format_line, timezone_from_env
from pipeline.lines.fields import shown_name, shown_text
from pipeline.lines.queue import CRITICAL, OK, STATUSES

from . import serve
from .judge import judge, worst
from .metrics import MetricsState, broker_label
from .options import PROG, MonitorConfig, parse_args
from .sample import ClusterModeError, Sample, take_sample
from .write import error_fields, sample_fields

EXIT_CODES = {status: code for code, status in enumerate(STATUSES)}  # ok 0, warn 1, critical 2
EXIT_UNWRITTEN = 1  # --once: the sample's lines could not be written
HELD_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait (the kernel keeps them pending) until the block is over; then their handlers run."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


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


def redis_label(connection: Redis) -> str:
    """``host:port/db`` (or the socket path) of the connection, never its credentials."""
    kwargs = connection.connection_pool.connection_kwargs
    if "path" in kwargs:
        return f"{kwargs['path']}/{kwargs.get('db', 0)}"
    return f"{kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}/{kwargs.get('db', 0)}"


@dataclass
class Monitor:
    """The loop's state: the last good sample and the current fault, if any."""

    config: MonitorConfig
    connection: Redis
    appender: Appender | None
    clock: LineClock
    previous: Sample | None = None
    fault: str | None = None
    written: bool = True  # whether the last write reached the log
    metrics: MetricsState | None = None  # what --metrics-port serves (pipeline.monitor.serve)

    @property
    def label(self) -> str:
        return redis_label(self.connection)

    def say(self, text: str) -> None:
        sys.stderr.write(f"{PROG} {shown_name(self.config.name)}: {shown_text(text)}\n")
        sys.stderr.flush()

    def write(self, fields: list[str], timestamp: float) -> bool:
        """Write one sample's lines: all of them in one ``write``, never half (SIGTERM waits); whether they were."""
        if self.appender is None:
            return True
        with signals_held():
            self.written = self.appender.write_lines([format_line(timestamp, text, self.clock) for text in fields])
        return self.written

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
            kind, reason = classify(exc), _one_line(exc)
            self.write([error_fields(self.config.name, self.label, kind, reason)], time.time())
            if self.metrics is not None:
                self.metrics.record_error(kind)
            if self.fault != kind:  # one stderr line per change of state, not per attempt
                retry = "" if self.config.once else "; retrying with backoff"
                self.say(f"cannot sample Redis at {self.label} ({kind}): {reason}{retry}")
            self.fault = kind
            return False
        if self.fault is not None:
            self.say(f"Redis at {self.label} can be sampled again")
            self.fault = None
        judgement = judge(sample, self.previous, self.config.thresholds)
        self.write(sample_fields(sample, judgement, self.config.name, self.label), sample.taken_at)
        if self.metrics is not None:
            self.metrics.record(sample, judgement)
        self.previous = sample
        return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if classify(exc) == "permission":
        text = f"NOPERM {text} (the monitor's ACL user needs +info and read commands on rq:*)"
    return text


def run_loop(monitor: Monitor) -> int:
    """Sample every ``--interval`` seconds until stopped; back off while Redis fails."""
    config, failures = monitor.config, 0
    next_at = time.monotonic()
    while True:
        failures = 0 if monitor.step() else failures + 1
        if config.once:
            return 2 if failures else 0 if monitor.written else EXIT_UNWRITTEN
        delay = config.interval if failures == 0 else min(config.max_backoff, config.interval * 2 ** (failures - 1))
        next_at = max(next_at + delay, time.monotonic()) if failures == 0 else time.monotonic() + delay
        time.sleep(max(0.0, next_at - time.monotonic()))


def run_check(monitor: Monitor) -> int:
    """Print one line per problem (or one ``OK`` line) and return 0, 1 or 2."""
    config = monitor.config
    try:
        sample = monitor.sample()
        first: Sample | None = None
        if config.check_window > 0:
            time.sleep(config.check_window)
            first, sample = sample, monitor.sample()
    except ClusterModeError:
        raise
    except Exception as exc:  # whatever Redis answers, --check says critical in one line, never a traceback (1: warn)
        text = f"cannot sample Redis at {monitor.label} ({classify(exc)}): {_one_line(exc)}"
        print(f"CRITICAL {shown_name(config.name)}: {shown_text(text)}")
        return EXIT_CODES[CRITICAL]
    problems = judge(sample, first, config.thresholds).problems()
    for level, text in problems:
        print(f"{level.upper()} {shown_name(config.name)}: {shown_text(text)}")
    status = worst([level for level, _ in problems])
    if status == OK:
        memory = f"{sample.redis.memory_used_pct:.1f}% of maxmemory" if sample.redis.maxmemory else "no maxmemory"
        print(f"OK {shown_name(config.name)}: {len(sample.queues)} queues, memory {memory}")
    return EXIT_CODES[status]


def refuse_cluster(monitor: Monitor, config: MonitorConfig) -> int:
    """A Redis Cluster node is not sampled: an error line in the log, one line on stderr, exit 2."""
    text = f"Redis at {monitor.label} is a Redis Cluster node (cluster_enabled:1): RQ does not support Redis Cluster"
    monitor.write([error_fields(config.name, monitor.label, "cluster", text)], time.time())
    print(f"{PROG} {shown_name(config.name)}: refusing: {shown_text(text)}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline.monitor`` and ``rq-task-time-monitor``."""
    config = parse_args(argv)
    if config.celery is not None:  # Celery's broker, alone or beside RQ (celery_cli.py)
        from .celery_cli import main_celery

        return main_celery(config)
    assert config.url is not None
    try:
        clock = LineClock(timezone_from_env())
    except ValueError as exc:
        print(f"{PROG} {shown_name(config.name)}: {shown_text(str(exc))}", file=sys.stderr)
        return 2
    connection = Redis.from_url(config.url, socket_timeout=10, socket_connect_timeout=5)
    metrics = None
    if config.metrics_port is not None and not config.check:  # the metrics endpoint: pipeline.monitor.serve
        metrics = MetricsState(broker_label(redis_label(connection)), config.name, config.thresholds)
        try:
            serve.start(metrics, config.metrics_host, config.metrics_port)
        except serve.MetricsError as exc:
            print(f"{PROG} {config.name}: {exc}", file=sys.stderr)
            return 2
    appender = (
        None
        if config.check
        else Appender(config.log, describe="queue-monitor log", variable=settings.MONITOR_LOG.variable, reporter=PROG)
    )
    if appender is not None:
        try:
            appender.open()  # a log that cannot be written is refused at start, not found out per line
        except AppendError as exc:
            print(f"{PROG} {shown_name(config.name)}: {shown_text(str(exc))}", file=sys.stderr)
            return 2
    monitor = Monitor(config, connection, appender, clock, metrics=metrics)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return run_check(monitor) if config.check else run_loop(monitor)
    except ClusterModeError:
        return refuse_cluster(monitor, config)
    except KeyboardInterrupt:
        return 0
    finally:
        if appender is not None:
            appender.close()
