"""Every environment variable the package reads: its name, its default and what it means.

Defaults live here and nowhere else, in the spirit of ``rq/defaults.py``. The command lines
build their options and ``--help`` from these settings; ``tests/test_settings.py`` holds the
README's and the docs' variable tables to them.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T", str, int, float, None)


@dataclass(frozen=True)
class Setting(Generic[T]):
    """One environment variable.

    ``default`` is the value used when the variable is unset or blank (None: no default);
    ``shown`` is how documentation shows a default computed at run time.
    """

    variable: str
    default: T
    help: str
    shown: str | None = None

    def shown_default(self) -> str:
        """The default as ``--help`` and the docs write it."""
        if self.shown is not None:
            return self.shown
        if self.default is None:
            return "none"
        return format(self.default, "g") if isinstance(self.default, float) else str(self.default)

    def raw(self, environ: Mapping[str, str] | None = None) -> str | None:
        """The variable's value, stripped; None when unset or blank."""
        value = (os.environ if environ is None else environ).get(self.variable, "").strip()
        return value or None

    def text(self, environ: Mapping[str, str] | None = None) -> str:
        """The variable's value, or the default as text (empty without one)."""
        value = self.raw(environ)
        if value is not None:
            return value
        return "" if self.default is None else str(self.default)


def default_name() -> str:
    """``<host>.<pid>``: the default name of a worker or a monitor in every line it writes."""
    return f"{socket.gethostname()}.{os.getpid()}"


NAME_SHOWN = "<host>.<pid>"

# --------------------------------------------------------------------------- task lines
TASK_LOG = Setting(
    "TASK_TIME_LOG",
    # The path the compose stack mounts its shared log volume at (worker writes, Logstash reads).
    "/var/log/rq-task-time/task-time.log",
    "the task-time log; its folder is created if needed",
)
TIMEZONE = Setting("TASK_TIME_TZ", "UTC", "exact IANA name of the zone line times are written and read in")

# Seconds an appender keeps looking at a last byte that is not a newline before taking it for
# a fragment: a line another process is writing at that moment ends within them.
APPEND_SETTLE_SECONDS = 0.05

# --------------------------------------------------------------------------- Celery (pipeline.celery)
# Not environment variables: names and sizes the Celery instrumentation and its readers share.
# The message header the producer stamps with the publish time (float epoch seconds); the
# queue monitor reads the same header from Redis broker messages.
CELERY_PUBLISHED_HEADER = "task_time_published_at"
# Task ids a worker's main process remembers having written a timeout or killed line for
# (Celery 5.7 sends task_failure twice for one hard time limit).
CELERY_WRITTEN_IDS = 10_000

# --------------------------------------------------------------------------- queue monitor
REDIS_URL = Setting("RQ_REDIS_URL", "redis://localhost:6379/0", "Redis URL")
MONITOR_NAME = Setting("TASK_TIME_MONITOR_NAME", None, "this monitor's name in every line", shown=NAME_SHOWN)
MONITOR_LOG = Setting("TASK_TIME_MONITOR_LOG", "/var/log/rq-task-time/queue-monitor.log", "the monitor log")
MONITOR_INTERVAL = Setting("TASK_TIME_MONITOR_INTERVAL", 15.0, "seconds between samples")
MONITOR_QUEUES = Setting(
    "TASK_TIME_MONITOR_QUEUES", None, "comma-separated queue names", shown="every queue in rq:queues"
)
MEMORY_WARN = Setting("TASK_TIME_MONITOR_MEMORY_WARN", 80.0, "warn at this % of maxmemory")
MEMORY_CRITICAL = Setting("TASK_TIME_MONITOR_MEMORY_CRITICAL", 90.0, "critical at this % of maxmemory")
MAX_LATENCY = Setting(
    "TASK_TIME_MONITOR_MAX_LATENCY",
    "default=300",
    "latency limits in seconds, QUEUE=SECONDS,...; 'default' for the rest",
)
HEAD = Setting("TASK_TIME_MONITOR_HEAD", 10, "head jobs read per queue for the latency, 1 to 1000")
HEAD_RANGE = (1, 1000)  # --head's bounds: past 1,000 a sample would read whole queues
SCHEDULED_GRACE = Setting("TASK_TIME_MONITOR_SCHEDULED_GRACE", 60.0, "seconds late before a scheduled job is overdue")
# RQ's worker TTL (420 s) plus a minute.
WORKER_TTL = Setting("TASK_TIME_MONITOR_WORKER_TTL", 480.0, "a worker whose last heartbeat is older is dead")
MAX_BACKOFF = Setting("TASK_TIME_MONITOR_MAX_BACKOFF", 120.0, "longest wait between attempts while Redis fails")
CHECK_WINDOW = Setting(
    "TASK_TIME_MONITOR_CHECK_WINDOW",
    1.0,
    "--check samples twice this far apart to see rising evictions or OOM rejections; 0: once",
)
# The metrics endpoint (pipeline.monitor.serve; the optional extra "metrics").
METRICS_PORT = Setting("TASK_TIME_MONITOR_METRICS_PORT", None, "serve /metrics and /queues on this port", shown="off")
METRICS_HOST = Setting("TASK_TIME_MONITOR_METRICS_HOST", "127.0.0.1", "address the metrics endpoint listens on")

# --------------------------------------------------------------------------- queue monitor: Celery
# (the options of pipeline/monitor/celery_options.py)
CELERY_BROKER = Setting(
    "TASK_TIME_MONITOR_CELERY_BROKER",
    None,
    "Celery's broker to sample: redis://… or amqp://…/vhost (with --rabbitmq-api); alone, RQ is not sampled",
)
RABBITMQ_API = Setting(
    "TASK_TIME_MONITOR_RABBITMQ_API", None, "RabbitMQ's management API, http://user:password@host:15672"
)
CELERY_QUEUES = Setting(
    "TASK_TIME_MONITOR_CELERY_QUEUES",
    None,
    "comma-separated Celery queue names",
    shown="every queue bound in Redis, every queue of the vhost",
)
CELERY_PRIORITY_STEPS = Setting(
    "TASK_TIME_MONITOR_CELERY_PRIORITY_STEPS", "0,3,6,9", "kombu's priority_steps on Redis, comma-separated"
)
CELERY_SEP = Setting("TASK_TIME_MONITOR_CELERY_SEP", "\\x06\\x16", "kombu's sep on Redis, with Python escapes")
CELERY_KEYPREFIX = Setting(
    "TASK_TIME_MONITOR_CELERY_KEYPREFIX", None, "kombu's global_keyprefix on Redis", shown="no prefix"
)

# --------------------------------------------------------------------------- bootstrap
ES_URL = Setting("ES_URL", "http://localhost:9200", "Elasticsearch URL(s), comma-separated")
ES_CLOUD_ID = Setting("ES_CLOUD_ID", None, "Elastic Cloud deployment id, instead of --es-url")
ES_USERNAME = Setting("ES_USERNAME", "elastic", "user for Elasticsearch and Kibana")
ES_PASSWORD = Setting("ES_PASSWORD", None, "that user's password")
ES_API_KEY = Setting("ES_API_KEY", None, "encoded API key, instead of username and password")
ES_CA_CERT = Setting("ES_CA_CERT", None, "CA certificate (PEM) to verify Elasticsearch and Kibana")
KIBANA_URL = Setting("KIBANA_URL", "http://localhost:5601", "Kibana URL")
KIBANA_SYSTEM_PASSWORD = Setting("KIBANA_SYSTEM_PASSWORD", None, "set the kibana_system user's password")
LOGSTASH_WRITER_PASSWORD = Setting("LOGSTASH_WRITER_PASSWORD", None, "create Logstash's writer user with this password")
KIBANA_VIEWER_PASSWORD = Setting(
    "KIBANA_VIEWER_PASSWORD", None, "create the read-only dashboard user with this password"
)
BOOTSTRAP_TIMEOUT = Setting("BOOTSTRAP_TIMEOUT", 300.0, "seconds to wait for each service to be ready")
ASSETS = Setting(
    "TASK_TIME_ASSETS",
    None,
    "folder holding elasticsearch/ and kibana/",
    shown="this checkout, else the package's copy",
)

SETTINGS: tuple[Setting[Any], ...] = tuple(value for value in dict(globals()).values() if isinstance(value, Setting))
