"""``python -m pipeline.monitor`` / ``rq-task-time-monitor``: the sampling loop, ``--check`` and their exit codes.

Every option has an environment variable (``options``, and ``--help``). The monitor
samples RQ's queues on one Redis (``rq_source``), Celery's queues on one broker
(``celery_source``), or both: with ``--celery-broker`` alone only Celery is sampled.
Faults never end the loop: each failed attempt writes a ``critical`` error line, stderr
gets one line per change of state, and attempts back off up to ``--max-backoff`` seconds.
A Redis Cluster node is refused at once (exit 2): RQ does not support Redis Cluster.

Exit codes: a configuration error is one line on stderr and 2, in every mode. ``--check``:
0 ok, 1 warn, 2 critical (a broker that cannot be sampled is critical). ``--once``: 0 its
lines were written, 1 they could not be (disk full, log unwritable), 2 a broker could not
be sampled. The loop ends 0 on SIGTERM or Ctrl-C, and never between the two halves of a
sample (``output``).
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence

from redis import Redis

from pipeline import settings
from pipeline.appender import Appender, AppendError
from pipeline.lines.clock import LineClock, timezone_from_env
from pipeline.lines.fields import shown_name, shown_text
from pipeline.lines.queue import OK, STATUSES

from . import serve
from .judge import worst
from .metrics import RQ, RQ_VIEW, MetricsState, broker_label
from .options import PROG, MonitorConfig, parse_args
from .output import Output
from .rq_source import RqSource
from .sample import ClusterModeError
from .source import BrokerSource
from .write import error_fields

EXIT_CODES = {status: code for code, status in enumerate(STATUSES)}  # ok 0, warn 1, critical 2
EXIT_UNWRITTEN = 1  # --once: the sample's lines could not be written
EXIT_UNSAMPLED = 2  # --once: a broker could not be sampled
REDIS_TIMEOUTS = {"socket_timeout": 10, "socket_connect_timeout": 5}


def run_loop(sources: Sequence[BrokerSource], config: MonitorConfig, output: Output) -> int:
    """Sample every source every ``--interval`` seconds until stopped; back off while any fails."""
    failures = 0
    next_at = time.monotonic()
    while True:
        ok = all([source.step() for source in sources])  # every source, even after one failed
        failures = 0 if ok else failures + 1
        if config.once:
            return EXIT_UNSAMPLED if not ok else 0 if output.written else EXIT_UNWRITTEN
        delay = config.interval if ok else min(config.max_backoff, config.interval * 2 ** (failures - 1))
        next_at = max(next_at + delay, time.monotonic()) if ok else time.monotonic() + delay
        time.sleep(max(0.0, next_at - time.monotonic()))


def run_check(sources: Sequence[BrokerSource], config: MonitorConfig) -> int:
    """Print one line per problem of every source (or one ``OK`` line) and return 0, 1 or 2."""
    results = [source.check(config.check_window) for source in sources]
    problems = [problem for found, _ in results for problem in found]
    for level, text in problems:
        print(f"{level.upper()} {shown_name(config.name)}: {shown_text(text)}")
    status = worst([level for level, _ in problems])
    if status == OK:
        summaries = [summary for _, summary in results]
        if len(sources) > 1:  # say which is which
            named = zip(sources, summaries, strict=True)
            summaries = [f"rq {text}" if isinstance(source, RqSource) else text for source, text in named]
        print(f"OK {shown_name(config.name)}: " + "; ".join(summaries))
    return EXIT_CODES[status]


def refuse_cluster(source: RqSource, output: Output) -> int:
    """A Redis Cluster node is not sampled: an error line in the log, one line on stderr, exit 2."""
    name = source.config.name
    text = f"Redis at {source.label} is a Redis Cluster node (cluster_enabled:1): RQ does not support Redis Cluster"
    output.write([error_fields(name, source.label, "cluster", text)], time.time())
    print(f"{PROG} {shown_name(name)}: refusing: {shown_text(text)}", file=sys.stderr)
    return 2


def build_sources(config: MonitorConfig, output: Output, metrics: MetricsState | None) -> list[BrokerSource]:
    """RQ's source when ``--url`` (or RQ alone), then Celery's when ``--celery-broker``; each known to ``metrics``."""
    sources: list[BrokerSource] = []
    if config.url is not None:
        rq = RqSource(config, Redis.from_url(config.url, **REDIS_TIMEOUTS), output)
        if metrics is not None:
            rq.metrics = metrics.source(RQ, broker_label(rq.label), RQ_VIEW)
        sources.append(rq)
    if config.celery is not None:  # the Celery parts, imported only then
        from .celery_metrics import CELERY, CELERY_VIEW, amqp_label
        from .celery_source import CelerySource

        celery = config.celery
        on_redis = celery.broker == "redis"
        connection = Redis.from_url(celery.broker_url, **REDIS_TIMEOUTS) if on_redis else None
        source = CelerySource(config, celery, connection, output)
        if metrics is not None:
            label = broker_label(source.label) if on_redis else amqp_label(celery.broker_url)
            source.metrics = metrics.source(CELERY, label, CELERY_VIEW)
        sources.append(source)
    return sources


def _refuse(config: MonitorConfig, text: str) -> int:
    print(f"{PROG} {shown_name(config.name)}: {shown_text(text)}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m pipeline.monitor`` and ``rq-task-time-monitor``."""
    config = parse_args(argv)
    try:
        clock = LineClock(timezone_from_env())
    except ValueError as exc:
        return _refuse(config, str(exc))
    appender = None
    if not config.check:  # a log that cannot be written is refused at start, not found out per line
        variable = settings.MONITOR_LOG.variable
        appender = Appender(config.log, describe="queue-monitor log", variable=variable, reporter=PROG)
        try:
            appender.open()
        except AppendError as exc:
            return _refuse(config, str(exc))
    output = Output(config.name, appender, clock)
    metrics = None
    if config.metrics_port is not None and not config.check:  # the metrics endpoint: pipeline.monitor.serve
        metrics = MetricsState(config.name, config.thresholds)
    sources = build_sources(config, output, metrics)
    if metrics is not None:
        try:
            serve.start(metrics, config.metrics_host, config.metrics_port)  # type: ignore[arg-type]
        except serve.MetricsError as exc:
            return _refuse(config, str(exc))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        return run_check(sources, config) if config.check else run_loop(sources, config, output)
    except ClusterModeError:
        return refuse_cluster(next(s for s in sources if isinstance(s, RqSource)), output)  # only RQ's raises it
    except KeyboardInterrupt:
        return 0
    finally:
        if appender is not None:
            appender.close()
