"""The monitor's options: each a flag and an environment variable, with its default in ``--help``."""

from __future__ import annotations

import argparse
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .alerts import Thresholds, parse_latency_limits

PROG = "rq-task-time-monitor"
DEFAULT_LOG = "/var/log/rq-task-time/queue-monitor.log"


def _option(
    parser: argparse.ArgumentParser,
    environ: Mapping[str, str],
    flag: str,
    variable: str,
    default: Any,
    help: str,
    kind: Callable[[str], Any] = str,
    shown: str | None = None,
) -> None:
    """``flag``, defaulting to ``variable`` when set (read as ``kind``), else to ``default``."""
    value = default
    if raw := environ.get(variable, "").strip():
        try:
            value = kind(raw)
        except ValueError:
            parser.error(f"{variable}={raw!r} is not {'a whole number' if kind is int else 'a number'}")
    if shown is None:
        shown = format(default, "g") if isinstance(default, float) else str(default)
    parser.add_argument(flag, type=kind, default=value, help=f"{help} ({variable}; default {shown})")


def parse_args(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> argparse.Namespace:
    """The options, each defaulting to its environment variable."""
    env = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(
        prog=PROG, description="Sample RQ's queues in Redis, read-only, and log their health."
    )

    def option(flag: str, variable: str, default: Any, help: str, **more: Any) -> None:
        _option(parser, env, flag, variable, default, help, **more)

    option("--url", "RQ_REDIS_URL", "redis://localhost:6379/0", "Redis URL")
    option(
        "--name",
        "TASK_TIME_MONITOR_NAME",
        f"{socket.gethostname()}.{os.getpid()}",
        "this monitor's name in every line",
        shown="<host>.<pid>",
    )
    option("--log", "TASK_TIME_MONITOR_LOG", DEFAULT_LOG, "the monitor log")
    option("--interval", "TASK_TIME_MONITOR_INTERVAL", 15.0, "seconds between samples", kind=float)
    option(
        "--queues",
        "TASK_TIME_MONITOR_QUEUES",
        "",
        "comma-separated queue names",
        shown="every queue in rq:queues",
    )
    option("--memory-warn", "TASK_TIME_MONITOR_MEMORY_WARN", 80.0, "warn at this %% of maxmemory", kind=float)
    option(
        "--memory-critical", "TASK_TIME_MONITOR_MEMORY_CRITICAL", 90.0, "critical at this %% of maxmemory", kind=float
    )
    option(
        "--max-latency",
        "TASK_TIME_MONITOR_MAX_LATENCY",
        "default=300",
        "latency limits in seconds, QUEUE=SECONDS,...; 'default' for the rest",
    )
    option("--head", "TASK_TIME_MONITOR_HEAD", 10, "head jobs read per queue for the latency", kind=int)
    option(
        "--scheduled-grace",
        "TASK_TIME_MONITOR_SCHEDULED_GRACE",
        60.0,
        "seconds late before a scheduled job is overdue",
        kind=float,
    )
    option(
        "--worker-ttl",
        "TASK_TIME_MONITOR_WORKER_TTL",
        480.0,
        "a worker whose last heartbeat is older is dead",
        kind=float,
    )
    option(
        "--max-backoff",
        "TASK_TIME_MONITOR_MAX_BACKOFF",
        120.0,
        "longest wait between attempts while Redis fails",
        kind=float,
    )
    option(
        "--check-window",
        "TASK_TIME_MONITOR_CHECK_WINDOW",
        1.0,
        "--check samples twice this far apart to see rising evictions or OOM rejections; 0: once",
        kind=float,
    )
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
    args.thresholds = Thresholds(args.memory_warn, args.memory_critical, limits)
    args.queue_names = [name.strip() for name in args.queues.split(",") if name.strip()] or None
    return args
