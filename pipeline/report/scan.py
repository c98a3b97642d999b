"""The regexes the report scans chunks of task lines with, built from ``pipeline.lines.task``.

``SCAN`` and ``SCAN_FAST`` (no filters: fewer groups, and the status group empty for
``finished``) take seconds only as plain decimals of at most 15 digits before the point
(``BOUNDED_SECONDS``), surely within ``SECONDS_LIMIT``; ``SCAN_ANY`` and ``SCAN_FAST_ANY``
take every number the grok reads, whose values ``in_range`` still checks.
"""

from __future__ import annotations

from pipeline.lines.fields import seconds_in_range
from pipeline.lines.task import (
    BOUNDED_SECONDS,
    FIELDS,
    FINISHED,
    QUEUE,
    STATUS,
    STATUSES,
    SYSTEM,
    TASK,
    TASK_TIME,
    TIME,
    WAIT_TIME,
    scan_pattern,
)

# The fields the report uses, in line order: timestamp, task, task time, queue, status, wait time, system.
CAPTURED = (TIME, TASK, TASK_TIME, QUEUE, STATUS, WAIT_TIME, SYSTEM)
assert [field for field in FIELDS if field in CAPTURED] == list(CAPTURED)
SCAN = scan_pattern(CAPTURED, seconds=BOUNDED_SECONDS)
SCAN_ANY = scan_pattern(CAPTURED)  # every number the grok reads; its lines' values still to check
# The statuses counted per task (finished is the rest).
NOTABLE = frozenset(status.encode() for status in STATUSES if status != FINISHED)
# Without filters only these are needed, and the status group is empty for ``finished``.
_FAST_CAPTURED = (TIME, TASK, TASK_TIME, STATUS, WAIT_TIME)
FAST_STATUSES = tuple(status for status in STATUSES if status != FINISHED)
SCAN_FAST = scan_pattern(_FAST_CAPTURED, FAST_STATUSES, BOUNDED_SECONDS)
SCAN_FAST_ANY = scan_pattern(_FAST_CAPTURED, FAST_STATUSES)
# Where the task time (in both scans) and the wait time (in each) are in a scan's groups.
TASK_TIME_GROUP = 2
assert CAPTURED.index(TASK_TIME) == _FAST_CAPTURED.index(TASK_TIME) == TASK_TIME_GROUP
WAIT_TIME_GROUP = CAPTURED.index(WAIT_TIME)
FAST_WAIT_TIME_GROUP = _FAST_CAPTURED.index(WAIT_TIME)


def in_range(seconds: bytes) -> bool:
    """A captured Task-time or Wait-time (empty: none) the pipeline's range check lets through."""
    return not seconds or seconds_in_range(float(seconds))
