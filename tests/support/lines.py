"""The line format as the README documents it, written out as a test's expectation.

Deliberately independent of ``pipeline.lines.task`` (which writes lines) and of the grok in
``logstash/`` (which reads them): the tests hold both to this description.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import unquote

SECONDS = r"-?\d+\.\d{6}"
LINE = re.compile(
    r"Time: (?P<time>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"
    rf" Task: (?P<task>\S+) Task-time: (?P<task_time>{SECONDS})"
    r"(?: Queue: (?P<queue>\S+))?"
    r"(?: Status: (?P<status>finished|failed|timeout|killed|retry))?"
    rf"(?: Wait-time: (?P<wait_time>{SECONDS}))?"
    r"(?: Job: (?P<job>\S+))?"
    r"(?: Worker: (?P<worker>\S+))?"
    r"(?: System: (?P<system>\S+))?"
)


def parse(line: str) -> dict[str, object]:
    """Fields of one line; names percent-decoded, seconds as floats, time as aware UTC datetime."""
    match = LINE.fullmatch(line)
    assert match, f"not a task-time line: {line!r}"
    fields: dict[str, object] = {k: v for k, v in match.groupdict().items() if v is not None}
    for key in ("task", "queue", "job", "worker"):
        if key in fields:
            fields[key] = unquote(str(fields[key]))
    for key in ("task_time", "wait_time"):
        if key in fields:
            fields[key] = float(str(fields[key]))
    fields["time"] = datetime.strptime(str(fields["time"]), "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC)
    return fields
