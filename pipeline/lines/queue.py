"""The queue-health line: written by the monitor, read by the report, and here only.

Three kinds of line, all ``Time: <asctime> Monitor: <name> Status: <status> …`` and all
ending with an optional free-text ``Reason:``::

    Time: 2026-11-22 07:30:00,012 Monitor: host.42 Status: warn Redis: 127.0.0.1:6379/0 Used-memory: 850000 \
Maxmemory: 1000000 Memory-used: 85.00 Policy: noeviction Evicted: 0 OOM-rejected: 0 Suspended: false \
Sample-time: 0.001234 Reason: memory 85.0% of maxmemory >= 80%
    Time: … Monitor: host.42 Status: critical Queue: default Depth: 12 Latency: 40.512000 Missing: 0 Started: 0 \
Abandoned: 0 Failed: 3 New-failed: 1 Deferred: 0 Scheduled: 0 Overdue: 0 Workers: 0 Busy: 0 Idle: 0 \
Reason: 12 jobs waiting and no live worker
    Time: … Monitor: host.42 Status: critical Redis: 127.0.0.1:6379/0 Error: unreachable Reason: Connection refused

Celery's lines (``pipeline.monitor.celery_*``) say where they come from with two more fields
right after ``Status:``, ``System: celery Broker: redis|rabbitmq``; RQ's lines have none
(``System:`` absent means RQ). Celery on Redis writes the Redis body with ``Unacked:`` (kombu's
``unacked`` hash, every queue) in place of ``Suspended:``; a RabbitMQ node writes ``Node:``,
the memory figures and its two alarms; Celery's queues write ``Reserved:`` and
``Consumers:`` after ``Latency:`` (``-`` when the broker cannot tell)::

    Time: … Monitor: host.42 Status: ok System: celery Broker: rabbitmq Node: rabbit@mq1 Used-memory: 90000000 \
Maxmemory: 400000000 Memory-used: 22.50 Memory-alarm: false Disk-alarm: false Sample-time: 0.004000 Reason: -
    Time: … Monitor: host.42 Status: critical System: celery Broker: rabbitmq Queue: celery Depth: 12 \
Latency: 40.000000 Reserved: 0 Consumers: 0 Reason: 12 messages waiting and no consumer

Fields are defined once here, as ``pipeline.lines.task`` defines the task line; the
report reads the lines with the regexes below, ``logstash/pipeline/queue-monitor.conf``
with its grok, and the tests bind the two.
"""

from __future__ import annotations

import re

from .clock import TIME, TIMESTAMP_PATTERN
from .fields import EMPTY, Field, encode_name, seconds_in_range

OK = "ok"
WARN = "warn"
CRITICAL = "critical"
STATUSES = (OK, WARN, CRITICAL)
ERRORS = ("unreachable", "auth", "permission", "cluster", "error", "vhost", "management")
SYSTEMS = ("rq", "celery")  # rq is never written: a line without System: is RQ's
BROKERS = ("redis", "rabbitmq")

# Kinds beyond the task line's: ``count`` (a non-negative integer), ``percent`` (two
# decimals), ``bool`` (true/false), ``word`` (a token written as is), ``text`` (the rest
# of the line), ``seconds-or-none`` (seconds, or ``-`` when unknown), ``count-or-none``
# (a count, or ``-`` when unknown), ``system`` and ``broker`` (one of SYSTEMS, BROKERS).
MONITOR = Field("Monitor", "monitor", "name")
STATUS = Field("Status", "status", "status")
REASON = Field("Reason", "reason", "text")

REDIS = Field("Redis", "redis", "name")
USED_MEMORY = Field("Used-memory", "used_memory", "count")
MAXMEMORY = Field("Maxmemory", "maxmemory", "count")
MEMORY_USED = Field("Memory-used", "memory_used_pct", "percent")
POLICY = Field("Policy", "maxmemory_policy", "name")
EVICTED = Field("Evicted", "evicted_keys", "count")
OOM_REJECTED = Field("OOM-rejected", "oom_rejections", "count")
SUSPENDED = Field("Suspended", "suspended", "bool")
SAMPLE_TIME = Field("Sample-time", "sample_time", "seconds")
ERROR = Field("Error", "error", "word")

QUEUE = Field("Queue", "queue", "name")
DEPTH = Field("Depth", "depth", "count")
LATENCY = Field("Latency", "latency", "seconds-or-none")
MISSING = Field("Missing", "missing", "count")
STARTED = Field("Started", "started", "count")
ABANDONED = Field("Abandoned", "abandoned", "count")
FAILED = Field("Failed", "failed", "count")
NEW_FAILED = Field("New-failed", "new_failed", "count")
DEFERRED = Field("Deferred", "deferred", "count")
SCHEDULED = Field("Scheduled", "scheduled", "count")
OVERDUE = Field("Overdue", "overdue", "count")
WORKERS = Field("Workers", "workers", "count")
BUSY = Field("Busy", "busy", "count")
IDLE = Field("Idle", "idle", "count")

# Celery (see the module docstring).
SYSTEM = Field("System", "system", "system")
BROKER = Field("Broker", "broker", "broker")
UNACKED = Field("Unacked", "unacked", "count")
NODE = Field("Node", "node", "name")
MEMORY_ALARM = Field("Memory-alarm", "memory_alarm", "bool")
DISK_ALARM = Field("Disk-alarm", "disk_alarm", "bool")
RESERVED = Field("Reserved", "reserved", "count-or-none")
CONSUMERS = Field("Consumers", "consumers", "count-or-none")

# Every line starts with these, in this order; then, on Celery's lines only, ORIGIN_FIELDS.
HEAD_FIELDS = (TIME, MONITOR, STATUS)
ORIGIN_FIELDS = (SYSTEM, BROKER)
# Then one of these bodies, in this order; every line may end with REASON.
REDIS_FIELDS = (REDIS, USED_MEMORY, MAXMEMORY, MEMORY_USED, POLICY, EVICTED, OOM_REJECTED, SUSPENDED, SAMPLE_TIME)
QUEUE_FIELDS = (
    QUEUE,
    DEPTH,
    LATENCY,
    MISSING,
    STARTED,
    ABANDONED,
    FAILED,
    NEW_FAILED,
    DEFERRED,
    SCHEDULED,
    OVERDUE,
    WORKERS,
    BUSY,
    IDLE,
)
ERROR_FIELDS = (REDIS, ERROR)
CELERY_REDIS_FIELDS = (REDIS, USED_MEMORY, MAXMEMORY, MEMORY_USED, POLICY, EVICTED, OOM_REJECTED, UNACKED, SAMPLE_TIME)
NODE_FIELDS = (NODE, USED_MEMORY, MAXMEMORY, MEMORY_USED, MEMORY_ALARM, DISK_ALARM, SAMPLE_TIME)
NODE_ERROR_FIELDS = (NODE, ERROR)
CELERY_QUEUE_FIELDS = (QUEUE, DEPTH, LATENCY, RESERVED, CONSUMERS)
LINE_KINDS = {
    "redis": REDIS_FIELDS,
    "queue": QUEUE_FIELDS,
    "error": ERROR_FIELDS,
    "celery-redis": CELERY_REDIS_FIELDS,
    "node": NODE_FIELDS,
    "node-error": NODE_ERROR_FIELDS,
    "celery-queue": CELERY_QUEUE_FIELDS,
}
# What each kind is to a reader: a broker line, a queue line or an error line.
ROLES = {
    "redis": "broker",
    "celery-redis": "broker",
    "node": "broker",
    "queue": "queue",
    "celery-queue": "queue",
    "error": "error",
    "node-error": "error",
}


def _number(field: Field, value: object) -> float:
    """The value of a numeric field (``count``, ``percent``, ``seconds``): an int or a float."""
    if isinstance(value, int | float):
        return value
    raise TypeError(f"{field.label}: {value!r} is not a number")


def _value(field: Field, value: object) -> str:
    kind = field.kind
    if kind == "name":
        return encode_name(None if value is None else str(value))
    if kind == "count":
        return str(int(_number(field, value)))
    if kind == "percent":
        return f"{float(_number(field, value)):.2f}"
    if kind == "seconds" or (kind == "seconds-or-none" and value is not None):
        return f"{float(_number(field, value)):.6f}"
    if kind == "seconds-or-none":
        return EMPTY
    if kind == "count-or-none":
        return EMPTY if value is None else str(int(value))  # type: ignore[call-overload]
    if kind in ("system", "broker"):
        allowed = SYSTEMS if kind == "system" else BROKERS
        if value not in allowed:
            raise ValueError(f"{field.label}: {value!r} is not one of {allowed}")
        return str(value)
    if kind == "bool":
        return "true" if value else "false"
    if kind in ("word", "status"):
        text = str(value)
        if not text or not text.isprintable() or " " in text:
            raise ValueError(f"{field.label}: {text!r} is not one word")
        return text
    raise ValueError(f"unknown field kind {kind!r}")


def clean_reason(reason: str) -> str:
    """A reason as it can be written: printable, on one line, ``-`` when empty."""
    text = "".join(char if char.isprintable() else " " for char in reason).strip()
    return text or EMPTY


def format_fields(
    monitor: str,
    status: str,
    kind: str,
    values: dict[str, object],
    reason: str = "",
    origin: tuple[str, str] | None = None,
) -> str:
    """Everything after the timestamp for a line of ``kind`` (a key of ``LINE_KINDS``).

    ``values`` maps each body field's ``name`` to its value; ``origin`` is ``(system,
    broker)`` for Celery's lines, None for RQ's (which carry no ``System:``).
    """
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    parts = [f"{MONITOR.label}: {encode_name(monitor)}", f"{STATUS.label}: {status}"]
    if origin is not None:
        parts += [f"{field.label}: {_value(field, value)}" for field, value in zip(ORIGIN_FIELDS, origin, strict=True)]
    parts += [f"{field.label}: {_value(field, values[field.name])}" for field in LINE_KINDS[kind]]
    parts.append(f"{REASON.label}: {clean_reason(reason)}")
    return " ".join(parts)


# ------------------------------------------------------------------------ reading

_DECIMAL = rb"[0-9]++\.[0-9]++"
_KINDS = {
    "timestamp": TIMESTAMP_PATTERN,
    "name": rb"\S++",
    "status": b"|".join(status.encode() for status in STATUSES),
    "count": rb"[0-9]++",
    "percent": _DECIMAL,
    "seconds": _DECIMAL,
    "seconds-or-none": rb"(?:" + _DECIMAL + rb"|" + re.escape(EMPTY.encode()) + rb")",
    "count-or-none": rb"(?:[0-9]++|" + re.escape(EMPTY.encode()) + rb")",
    "system": b"|".join(system.encode() for system in SYSTEMS),
    "broker": b"|".join(broker.encode() for broker in BROKERS),
    "bool": rb"true|false",
    "word": b"|".join(error.encode() for error in ERRORS),
    "text": rb"[^\r\n]++",
}


def _fields(fields: tuple[Field, ...]) -> bytes:
    return b" ".join(
        re.escape(f"{field.label}: ".encode()) + b"(?P<" + field.name.encode() + b">" + _KINDS[field.kind] + b")"
        for field in fields
    )


def _line(body: tuple[Field, ...]) -> re.Pattern[bytes]:
    # As the grok: the origin is optional before any body.
    return re.compile(_fields(HEAD_FIELDS) + b" (?:" + _fields(ORIGIN_FIELDS) + b" )?" + _fields((*body, REASON)))


LINE_PATTERNS = {kind: _line(body) for kind, body in LINE_KINDS.items()}


# The decimal fields of each kind of line (never negative): each must be at most
# SECONDS_LIMIT once read as a float, as queue-monitor.conf's range check wants them.
_DECIMALS = {
    kind: tuple(field.name for field in body if field.kind in ("percent", "seconds", "seconds-or-none"))
    for kind, body in LINE_KINDS.items()
}
_NONE = EMPTY.encode()


def match_line(line: bytes) -> tuple[str, re.Match[bytes]] | None:
    """The kind (a key of ``LINE_KINDS``; ``ROLES`` says which are queue lines) and fields of a
    line the queue-monitor pipeline parses, or None: its grok, and its range check (a decimal
    beyond ``SECONDS_LIMIT``, say a ``Latency:`` of 400 digits, which reads as infinity, leaves
    the line unparsed). The time still has to pass the date filter: ``LineClock.millis(match["timestamp"])``."""
    for kind, pattern in LINE_PATTERNS.items():
        match = pattern.fullmatch(line)
        if match is not None:
            if all(seconds_in_range(float(match[name])) for name in _DECIMALS[kind] if match[name] != _NONE):
                return kind, match
            return None
    return None
