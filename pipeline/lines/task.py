"""The task-time line: one line per task execution, written and read here.

One execution of a task is one line::

    Time: 2026-11-21 23:48:57,244 Task: jobs.send_mail Task-time: 0.052571 Queue: default \
Status: finished Wait-time: 0.001201 Job: 4f1c... Worker: host.4711

A Celery execution (``pipeline.celery``) ends with one more field, ``System: celery``; RQ
lines leave it out, so a line without ``System:`` is an RQ execution.

The first three fields are the original format and stay a valid line on their own; the
others follow in the order of ``OPTIONAL_FIELDS`` and are left out when unknown. The
writers (``pipeline.tasklog``) and the report read and write the shape only through this
module; ``logstash/pipeline/task-time.conf`` reads it with a grok, and the tests bind the two.

Read back, a line is accepted exactly when the pipeline parses it: the grok anchored at
both ends (ASCII ``\\S+`` names, seconds as decimals, integers or exponents, read whole
and converted to 64-bit floats, one of ``STATUSES``), the date filter's rules
(``pipeline.lines.clock``), and the pipeline's range check: ``Task-time`` and ``Wait-time``
at most ``SECONDS_LIMIT`` either way (``seconds_in_range``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .clock import TIME, TIMESTAMP_PATTERN, LineClock, iso_millis
from .fields import Field, encode_name, seconds_in_range

FINISHED = "finished"
FAILED = "failed"
TIMEOUT = "timeout"
KILLED = "killed"
RETRY = "retry"  # the execution ended in a retry (Celery's ``self.retry()``, ``autoretry_for``)
STATUSES = (FINISHED, FAILED, TIMEOUT, KILLED, RETRY)

# Kinds: ``timestamp`` (``pipeline.lines.clock``), ``name`` (``encode_name``), decimal
# ``seconds``, ``status`` (one of ``STATUSES``).
TASK = Field("Task", "task_name", "name")
TASK_TIME = Field("Task-time", "task_time", "seconds")
QUEUE = Field("Queue", "queue", "name")
STATUS = Field("Status", "status", "status")
WAIT_TIME = Field("Wait-time", "wait_time", "seconds")
JOB = Field("Job", "job_id", "name")
WORKER = Field("Worker", "worker", "name")
# The task system that ran the execution; absent means RQ.
SYSTEM = Field("System", "system", "name")
CELERY = "celery"

# In the order they are written; the first three are the seed format and always present.
REQUIRED_FIELDS = (TIME, TASK, TASK_TIME)
OPTIONAL_FIELDS = (QUEUE, STATUS, WAIT_TIME, JOB, WORKER, SYSTEM)
FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS


@dataclass(frozen=True, slots=True)
class TaskRun:
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
    system: str | None = None


def format_seconds(seconds: float) -> str:
    """Plain decimal seconds with microsecond precision, never exponent notation."""
    return f"{seconds:.6f}"


# "Label: " prefixes, built once from the fields above: format_fields runs once per job.
_TASK, _TASK_TIME, _QUEUE, _STATUS, _WAIT_TIME, _JOB, _WORKER, _SYSTEM = (
    f"{field.label}: " for field in (TASK, TASK_TIME, QUEUE, STATUS, WAIT_TIME, JOB, WORKER, SYSTEM)
)


def format_fields(run: TaskRun) -> str:
    """Everything after the timestamp: ``Task: … Task-time: …`` and the known optional fields."""
    e = run
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
    if e.system is not None:
        line += f" {_SYSTEM}{encode_name(e.system)}"
    return line


# Possessive quantifiers (``++``, ``?+``) change nothing in what matches, as every field is
# followed by a space or the line's end, which none of them can take, but they spare the
# regex engine its backtracking bookkeeping: the scan runs several times faster.
KIND_PATTERNS = {
    "timestamp": TIMESTAMP_PATTERN,
    "name": rb"\S++",
    "seconds": rb"-?[0-9]++(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+",
    "status": b"|".join(re.escape(status.encode()) for status in STATUSES),
}


# Seconds surely within ``SECONDS_LIMIT``: at most 15 digits before the point, no exponent.
# A scan with it takes the lines nearly all logs hold without a range check per line; the
# others (exponents, long numbers) are read with ``KIND_PATTERNS`` and checked one by one.
BOUNDED_SECONDS = rb"-?+[0-9]{1,15}+(?:\.[0-9]++)?+"


def line_body(
    captured: tuple[Field, ...] = FIELDS, statuses: tuple[str, ...] = STATUSES, seconds: bytes | None = None
) -> bytes:
    """The regex of one whole line (no anchors), with one group per field in ``captured``.

    Required fields come first in their order, then each optional field, in its order, or
    not at all, exactly as ``format_fields`` writes them. The status group
    captures only ``statuses`` (empty for the others). ``seconds``, if given, replaces the
    seconds pattern (``BOUNDED_SECONDS``).
    """

    def field_pattern(field: Field) -> bytes:
        value = KIND_PATTERNS[field.kind] if seconds is None or field.kind != "seconds" else seconds
        if field.kind == "status" and field in captured and statuses != STATUSES:
            others = b"|".join(re.escape(status.encode()) for status in STATUSES if status not in statuses)
            taken = b"|".join(re.escape(status.encode()) for status in statuses)
            value = b"(?:" + others + b"|(" + taken + b"))"
        elif field in captured:
            value = b"(" + value + b")"
        else:
            value = b"(?:" + value + b")"
        return re.escape(f"{field.label}: ".encode()) + value

    required = b" ".join(field_pattern(field) for field in REQUIRED_FIELDS)
    return required + b"".join(b"(?: " + field_pattern(field) + b")?+" for field in OPTIONAL_FIELDS)


def scan_pattern(
    captured: tuple[Field, ...], statuses: tuple[str, ...] = STATUSES, seconds: bytes | None = None
) -> re.Pattern[bytes]:
    """Whole lines in a chunk that starts with ``\\n``: each match starts at its line's ``\\n``
    and ends before the next one (the literal start lets the engine skip to candidates fast)."""
    return re.compile(b"\\n" + line_body(captured, statuses, seconds) + b"(?=\\n)")


FULL_LINE = re.compile(line_body())
FIELD_NAMES = tuple(field.name for field in FIELDS)
SECONDS_FIELDS = frozenset(field.name for field in FIELDS if field.kind == "seconds")


def read_line(line: bytes, clock: LineClock) -> dict[str, object] | None:
    """The fields the pipeline gives one line (without its newline), or None if it keeps it unparsed.

    Names stay as written (encoded, like in Elasticsearch); seconds are floats; the time is
    ``epoch_millis`` (int) and ``@timestamp`` (ISO string).
    """
    match = FULL_LINE.fullmatch(line)
    if match is None or b"\n" in line:
        return None
    values = dict(zip(FIELD_NAMES, match.groups(), strict=True))
    stamp = values.pop("timestamp")
    seconds = clock.seconds(stamp[:19])
    if seconds is None:
        return None
    fields: dict[str, object] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name in SECONDS_FIELDS:
            fields[name] = float(value)
            if not seconds_in_range(fields[name]):  # type: ignore[arg-type]
                return None
        else:
            fields[name] = value.decode("utf-8", "replace")
    millis = seconds * 1000 + int(stamp[20:23])
    fields["epoch_millis"] = millis
    fields["@timestamp"] = iso_millis(millis)
    return fields
