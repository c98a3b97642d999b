"""The monitor's options: each a flag and an environment variable (``pipeline.settings``), read
into one typed ``MonitorConfig``."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipeline import settings
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
    celery: CeleryConfig | None = None  # celery-health: Celery's broker, when one is given


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
        except ValueError:
            parser.error(f"{setting.variable}={raw!r} is not {'a whole number' if kind is int else 'a number'}")
    help_text = f"{setting.help} ({setting.variable}; default {setting.shown_default()})".replace("%", "%%")
    parser.add_argument(flag, type=kind, default=value, help=help_text)


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> MonitorConfig:
    """The options, each defaulting to its environment variable."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog=PROG, description="Sample RQ's queues in Redis, read-only, and log their health."
    )
    for flag, setting, kind in (
        ("--url", settings.REDIS_URL, str),
        ("--name", settings.MONITOR_NAME, str),
        ("--log", settings.MONITOR_LOG, str),
        ("--interval", settings.MONITOR_INTERVAL, float),
        ("--queues", settings.MONITOR_QUEUES, str),
        ("--memory-warn", settings.MEMORY_WARN, float),
        ("--memory-critical", settings.MEMORY_CRITICAL, float),
        ("--max-latency", settings.MAX_LATENCY, str),
        ("--head", settings.HEAD, int),
        ("--scheduled-grace", settings.SCHEDULED_GRACE, float),
        ("--worker-ttl", settings.WORKER_TTL, float),
        ("--max-backoff", settings.MAX_BACKOFF, float),
        ("--check-window", settings.CHECK_WINDOW, float),
    ):
        _option(parser, env, flag, setting, kind)
    celery_options.add_options(parser, env)  # celery-health
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--once", action="store_true", help="write one sample's lines and exit")
    mode.add_argument("--check", action="store_true", help="print one line per problem; exit 0 ok, 1 warn, 2 critical")
    args = parser.parse_args(argv)
    try:
        limits = parse_latency_limits(args.max_latency)
    except ValueError as exc:
        parser.error(str(exc))
    if args.interval <= 0 or args.max_backoff <= 0 or args.head < 1 or args.check_window < 0:
        parser.error("--interval, --max-backoff and --head must be positive, --check-window not negative")
    if not 0 < args.memory_warn <= args.memory_critical:
        parser.error("need 0 < --memory-warn <= --memory-critical")
    # celery-health: with a Celery broker, RQ is sampled only when its Redis is named.
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
        celery=celery,
    )
