"""The task-time line: the contract between the job class and Logstash's grok.

One execution of a task is one line::

    Time: 2026-11-21 23:48:57,244 Task: jobs.send_mail Task-time: 0.052571 Queue: default \
Status: finished Wait-time: 0.001201 Job: 4f1c... Worker: host.4711

The first three fields are the original format and stay a valid line on their own; the
others follow in the order of ``OPTIONAL_FIELDS`` and are left out when unknown. This
module is the only place that writes that shape; ``logstash/pipeline/task-time.conf`` is
the only place that reads it, and the tests bind the two together.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FINISHED = "finished"
FAILED = "failed"
TIMEOUT = "timeout"
KILLED = "killed"
STATUSES = (FINISHED, FAILED, TIMEOUT, KILLED)

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # followed by ",mmm", like logging's asctime
TIMEZONE_ENV = "TASK_TIME_TZ"
EMPTY = "-"


@dataclass(frozen=True)
class Field:
    """One ``Label: value`` field of the line.

    ``name`` is the field's name everywhere after the line: the grok capture, the
    Elasticsearch document field, the log record attribute and the report's key.
    ``kind`` says how its value is written: a ``timestamp``, an encoded ``name``, decimal
    ``seconds`` or a ``status`` from ``STATUSES``.
    """

    label: str
    name: str
    kind: str


TIME = Field("Time", "timestamp", "timestamp")
TASK = Field("Task", "task_name", "name")
TASK_TIME = Field("Task-time", "task_time", "seconds")
QUEUE = Field("Queue", "queue", "name")
STATUS = Field("Status", "status", "status")
WAIT_TIME = Field("Wait-time", "wait_time", "seconds")
JOB = Field("Job", "job_id", "name")
WORKER = Field("Worker", "worker", "name")

# In the order they are written; the first three are the seed format and always present.
REQUIRED_FIELDS = (TIME, TASK, TASK_TIME)
OPTIONAL_FIELDS = (QUEUE, STATUS, WAIT_TIME, JOB, WORKER)
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
REQUIRED_LABELS = tuple(field.label for field in REQUIRED_FIELDS)
OPTIONAL_LABELS = tuple(field.label for field in OPTIONAL_FIELDS)


@dataclass(frozen=True, slots=True)
class Execution:
    """One execution of a task: everything its line says but the time it was written.

    Attribute names are the ``Field.name`` of each field after ``Time``.
    """

    task_name: str | None
    task_time: float
    queue: str | None = None
    status: str | None = None
    wait_time: float | None = None
    job_id: str | None = None
    worker: str | None = None


def format_seconds(seconds: float) -> str:
    """Plain decimal seconds with microsecond precision, never exponent notation."""
    return f"{seconds:.6f}"


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def encode_name(value: str | None) -> str:
    """Write a task, queue, job or worker name as one whitespace-free token.

    Whitespace, control and other non-printable characters and ``%`` itself are
    percent-encoded (UTF-8), so no name can split the line or forge a field, and the
    original is recoverable. An empty or missing name is written as ``-``; a name that
    is literally ``-`` is written as ``%2D``.
    """
    if not value:
        return EMPTY
    if value.isprintable() and " " not in value and "%" not in value and value != EMPTY:
        return value
    if value == EMPTY:
        return "%2D"
    return "".join(char if char.isprintable() and char not in " %" else _percent(char) for char in value)


_TIME = f"{TIME.label}: "
# "Label: " prefixes, built once from the fields above: format_fields runs once per job.
_TASK, _TASK_TIME, _QUEUE, _STATUS, _WAIT_TIME, _JOB, _WORKER = (
    f"{field.label}: " for field in (TASK, TASK_TIME, QUEUE, STATUS, WAIT_TIME, JOB, WORKER)
)


def format_fields(execution: Execution) -> str:
    """Everything after the timestamp: ``Task: … Task-time: …`` and the known optional fields."""
    e = execution
    # Seconds as format_seconds writes them, inlined for speed.
    line = f"{_TASK}{encode_name(e.task_name)} {_TASK_TIME}{e.task_time:.6f}"
    if e.queue is not None:
        line += f" {_QUEUE}{encode_name(e.queue)}"
    if e.status is not None:
        line += f" {_STATUS}{e.status}"
    if e.wait_time is not None:
        line += f" {_WAIT_TIME}{e.wait_time:.6f}"
    if e.job_id is not None:
        line += f" {_JOB}{encode_name(e.job_id)}"
    if e.worker is not None:
        line += f" {_WORKER}{encode_name(e.worker)}"
    return line


def timezone_from_env(environ: Mapping[str, str] | None = None) -> datetime.tzinfo:
    """The zone line timestamps are written in: ``TASK_TIME_TZ`` (an IANA name), UTC by default.

    Logstash's date filter reads the same variable, so only names both accept are taken:
    exact IANA names (Joda, like zoneinfo, is case-sensitive), no abbreviations.
    """
    name = (environ if environ is not None else os.environ).get(TIMEZONE_ENV, "").strip() or "UTC"
    if name == "UTC":
        return datetime.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{TIMEZONE_ENV}={name!r} is not a known IANA time zone") from exc


class LineClock:
    """Formats epoch seconds as ``YYYY-MM-DD HH:MM:SS,mmm`` in one zone.

    The date part is cached per whole second: most lines of a busy worker share it.
    """

    def __init__(self, tz: datetime.tzinfo = datetime.UTC) -> None:
        self.tz = tz
        self._second = -1
        self._prefix = ""

    def format(self, timestamp: float) -> str:
        second = int(timestamp)
        if second != self._second:
            if self.tz is datetime.UTC:
                self._prefix = time.strftime(TIME_FORMAT, time.gmtime(second))
            else:
                self._prefix = datetime.datetime.fromtimestamp(second, self.tz).strftime(TIME_FORMAT)
            self._second = second
        return f"{self._prefix},{int((timestamp - second) * 1000):03d}"


def format_line(timestamp: float, fields: str, clock: LineClock | None = None) -> str:
    """The whole line for the fields of ``format_fields`` written at ``timestamp`` (epoch seconds)."""
    return f"{_TIME}{(clock or LineClock()).format(timestamp)} {fields}"
