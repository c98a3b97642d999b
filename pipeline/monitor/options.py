"""The monitor's options: each a flag and an environment variable (``pipeline.settings``), read
into one typed ``MonitorConfig``.

Every configuration error (a bad URL, a number that is not finite or out of range, an
unknown option) is one line on stderr and exit 2, before anything connects or is written.
"""

from __future__ import annotations

import argparse
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from redis import ConnectionPool

from pipeline import settings
from pipeline.lines.fields import shown_name
from pipeline.settings import Setting

from . import celery_options
from .celery_options import CeleryConfig
from .judge import Thresholds, parse_latency_limits

PROG = "rq-task-time-monitor"


@dataclass(frozen=True)
class MonitorConfig:
    """Everything the monitor was told, typed."""

    url: str | None  # None: RQ not sampled (a Celery broker alone)
    name: str
    log: str
    interval: float
    queues: list[str] | None  # None: every queue in rq:queues
    thresholds: Thresholds
    head: int
    scheduled_grace: float
    worker_ttl: float
    max_backoff: float
    check_window: float
    once: bool = False
    check: bool = False
    metrics_port: int | None = None  # None: no endpoint (pipeline.monitor.serve)
    metrics_host: str = settings.METRICS_HOST.default
    celery: CeleryConfig | None = None  # Celery's broker, when one is given


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is one line (``prog: error: …``, data escaped) and exit 2, without the usage."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {shown_name(' '.join(message.split()))}\n")


def number(text: str) -> float:
    """A float option's value: finite (``nan`` and ``inf`` are refused)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _option(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    flag: str,
    setting: Setting[Any],
    kind: Callable[[str], Any] = str,
) -> None:
    """``flag``, defaulting to the setting's variable when set (read as ``kind``), else to its default."""
    value = setting.default
    if (raw := setting.raw(environ)) is not None:
        try:
            value = kind(raw)
        except argparse.ArgumentTypeError as exc:  # a float option's own message
            parser.error(f"{setting.variable}={exc}")
        except ValueError:
            parser.error(f"{setting.variable}={raw!r} is not {'a whole number' if kind is int else 'a number'}")
    help_text = f"{setting.help} ({setting.variable}; default {setting.shown_default()})".replace("%", "%%")
    parser.add_argument(flag, type=kind, default=value, help=help_text)


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """The options, each defaulting to its environment variable."""
    env = os.environ if environ is None else environ
    parser = _Parser(prog=PROG, description="Sample RQ's queues in Redis, read-only, and log their health.")
    for flag, setting, kind in (
        ("--url", settings.REDIS_URL, str),
        ("--name", settings.MONITOR_NAME, str),
        ("--log", settings.MONITOR_LOG, str),
        ("--interval", settings.MONITOR_INTERVAL, number),
        ("--queues", settings.MONITOR_QUEUES, str),
        ("--memory-warn", settings.MEMORY_WARN, number),
        ("--memory-critical", settings.MEMORY_CRITICAL, number),
        ("--max-latency", settings.MAX_LATENCY, str),
        ("--head", settings.HEAD, int),
        ("--scheduled-grace", settings.SCHEDULED_GRACE, number),
        ("--worker-ttl", settings.WORKER_TTL, number),
        ("--max-backoff", settings.MAX_BACKOFF, number),
        ("--check-window", settings.CHECK_WINDOW, number),
        ("--metrics-port", settings.METRICS_PORT, int),
        ("--metrics-host", settings.METRICS_HOST, str),
    ):
        _option(parser, env, flag, setting, kind)
    celery_options.add_options(parser, env)  # --celery-broker and its companions
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--once",
        action="store_true",
        help="write one sample's lines and exit: 0 written, 1 not written, 2 Redis failed",
    )
    mode.add_argument("--check", action="store_true", help="print one line per problem; exit 0 ok, 1 warn, 2 critical")
    args = parser.parse_args(argv)
    try:
        limits = parse_latency_limits(args.max_latency)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        ConnectionPool.from_url(args.url)  # parses only; nothing connects
    except (ValueError, TypeError) as exc:
        parser.error(f"--url ({settings.REDIS_URL.variable}): {exc}")
    for flag, setting, value in (
        ("--interval", settings.MONITOR_INTERVAL, args.interval),
        ("--max-backoff", settings.MAX_BACKOFF, args.max_backoff),
    ):
        if not value > 0:
            parser.error(f"{flag} ({setting.variable}) must be positive")
    low, high = settings.HEAD_RANGE
    if not low <= args.head <= high:
        parser.error(f"--head ({settings.HEAD.variable}) must be {low} to {high}, not {args.head}")
    if args.check_window < 0:
        parser.error(f"--check-window ({settings.CHECK_WINDOW.variable}) must not be negative")
    if not 0 < args.memory_warn <= args.memory_critical:
        parser.error("need 0 < --memory-warn <= --memory-critical")
    if args.metrics_port is not None and not 0 < args.metrics_port < 65536:
        parser.error(f"--metrics-port {args.metrics_port} is not a TCP port (1-65535)")
    # With a Celery broker, RQ is sampled only when its Redis is named.
    rq_sampled = not args.celery_broker or celery_options.rq_url_given(argv, env)
    try:
        celery = celery_options.celery_config(args, rq_sampled)
    except ValueError as exc:
        parser.error(str(exc))
    return MonitorConfig(
        url=args.url if rq_sampled else None,
        name=args.name or settings.default_name(),
        log=args.log,
        interval=args.interval,
        queues=[name.strip() for name in (args.queues or "").split(",") if name.strip()] or None,
        thresholds=Thresholds(args.memory_warn, args.memory_critical, limits),
        head=args.head,
        scheduled_grace=args.scheduled_grace,
        worker_ttl=args.worker_ttl,
        max_backoff=args.max_backoff,
        check_window=args.check_window,
        once=args.once,
        check=args.check,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        celery=celery,
    )
