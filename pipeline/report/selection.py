"""What a read of the logs is told and keeps besides the tallies: the filters, other kinds of
lines, and the unparsed lines it shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class LineReader(Protocol):
    """Another kind of line in the same files (e.g. queue-monitor lines): offered what the task regex refuses."""

    def offer(self, line: bytes) -> bool:
        """Take the line (True) or leave it unparsed (False)."""
        ...


@dataclass
class Unparsed:
    """A line the pipeline would keep unparsed: where it is and what it says."""

    source: str
    number: int
    text: str


@dataclass
class Selection:
    """Filters applied while reading. Bounds are epoch milliseconds, ``since`` inclusive, ``until`` exclusive."""

    since: int | None = None
    until: int | None = None
    queues: frozenset[str] | None = None
    statuses: frozenset[str] | None = None
    # Task systems (``celery``; ``rq`` for lines without a System field, as RQ writes them).
    systems: frozenset[str] | None = None
