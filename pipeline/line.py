"""The task-time line: the contract between the job class and Logstash's grok.

One execution of a task is one line::

    Time: 2026-11-21 23:48:57,244 Task: jobs.send_mail Task-time: 0.052571 Queue: default \
Status: finished Wait-time: 0.001201 Job: 4f1c... Worker: host.4711

The first three fields are the original format and stay a valid line on their own; the
others follow in the order of ``OPTIONAL_LABELS`` and are left out when unknown. This
module is the only place that writes that shape; ``logstash/pipeline/task-time.conf`` is
the only place that reads it, and the tests bind the two together.
"""

from __future__ import annotations

import datetime
import os
import time
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FINISHED = "finished"
FAILED = "failed"
TIMEOUT = "timeout"
KILLED = "killed"
STATUSES = (FINISHED, FAILED, TIMEOUT, KILLED)

# Labels in the order they are written; the first three are the seed format.
REQUIRED_LABELS = ("Time", "Task", "Task-time")
OPTIONAL_LABELS = ("Queue", "Status", "Wait-time", "Job", "Worker")

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # followed by ",mmm", like logging's asctime
TIMEZONE_ENV = "TASK_TIME_TZ"
EMPTY = "-"


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


def format_fields(
    task: str | None,
    task_time: float,
    queue: str | None = None,
    status: str | None = None,
    wait_time: float | None = None,
    job_id: str | None = None,
    worker: str | None = None,
) -> str:
    """Everything after the timestamp: ``Task: … Task-time: …`` and the known optional fields."""
    # Seconds as format_seconds writes them, inlined: this runs once per job.
    line = f"Task: {encode_name(task)} Task-time: {task_time:.6f}"
    if queue is not None:
        line += f" Queue: {encode_name(queue)}"
    if status is not None:
        line += f" Status: {status}"
    if wait_time is not None:
        line += f" Wait-time: {wait_time:.6f}"
    if job_id is not None:
        line += f" Job: {encode_name(job_id)}"
    if worker is not None:
        line += f" Worker: {encode_name(worker)}"
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
    return f"Time: {(clock or LineClock()).format(timestamp)} {fields}"
