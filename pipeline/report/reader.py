"""The report's reading of task-time lines: chunks of whole lines in, per-task tallies out.

Work per line is kept small, as a log holds millions of lines: one regex scan per chunk
(``findall`` over many lines at once), the date checked once per distinct second, names
kept as the bytes they are written as (decoded once, at the end), and in UTC times compared
as the fixed-width strings they are. Only a chunk that holds an unparsed line is scanned
a second time, line by line, to find it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from pipeline.lines.clock import LineClock, iso_millis
from pipeline.lines.fields import decode_name
from pipeline.lines.task import (
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

from .stats import TaskTally

# The fields the report uses, in line order: timestamp, task, task time, queue, status, wait time, system.
_CAPTURED = (TIME, TASK, TASK_TIME, QUEUE, STATUS, WAIT_TIME, SYSTEM)
assert [field for field in FIELDS if field in _CAPTURED] == list(_CAPTURED)
SCAN = scan_pattern(_CAPTURED)
# The statuses counted per task (finished is the rest).
_NOTABLE = frozenset(status.encode() for status in STATUSES if status != FINISHED)
# Without filters only these are needed, and the status group is empty for ``finished``.
_FAST_CAPTURED = (TIME, TASK, TASK_TIME, STATUS, WAIT_TIME)
SCAN_FAST = scan_pattern(_FAST_CAPTURED, tuple(status for status in STATUSES if status != FINISHED))
_YEAR_0 = -62_167_219_200_000  # 0000-01-01T00:00:00Z in epoch milliseconds
_YEAR_10000 = 253_402_300_800_000
_CACHE_LIMIT = 4096  # lines come mostly in order: a small cache of seconds is enough
_MISSING = object()


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


@dataclass
class Tally:
    """Everything read so far."""

    clock: LineClock = field(default_factory=LineClock)
    selection: Selection = field(default_factory=Selection)
    keep_unparsed: int = 0
    readers: list[LineReader] = field(default_factory=list)
    lines: int = 0
    parsed: int = 0
    unparsed: int = 0
    unparsed_samples: list[Unparsed] = field(default_factory=list)
    tasks: dict[bytes, TaskTally] = field(default_factory=dict)
    first: int | None = None  # epoch milliseconds of the earliest selected execution
    last: int | None = None

    def __post_init__(self) -> None:
        self._seconds: dict[bytes, int | None] = {}
        self._queue_selected: dict[bytes, bool] = {}
        self._first_text = self._last_text = b""
        # Unfiltered in UTC: the regex takes valid times only, and nothing else needs a look per line.
        self._fast = self.clock.is_utc and self.selection == Selection()
        self._scan = SCAN_FAST if self._fast else SCAN
        selection = self.selection
        self._statuses = None if selection.statuses is None else {s.encode() for s in selection.statuses}
        self._systems = None if selection.systems is None else {s.encode() for s in selection.systems}
        if self._systems is not None and b"rq" in self._systems:
            self._systems.add(b"")  # RQ lines have no System field
        # In UTC, bounds and first/last compare as the lines' own fixed-width time strings.
        self._since_text = self._utc_text(selection.since)
        self._until_text = self._utc_text(selection.until)

    def _utc_text(self, millis: int | None) -> bytes | None:
        """A bound as a line's time string; lines hold years 0000 to 9999, so bounds beyond are clamped."""
        if millis is None or not self.clock.is_utc:
            return None
        millis = min(max(millis, _YEAR_0), _YEAR_10000 - 1)
        return iso_millis(millis)[:23].replace("T", " ").replace(".", ",").encode()

    def feed(self, chunk: bytes, source: str, first_number: int) -> int:
        """Read ``chunk``: whole lines, each ending in ``\\n``; ``first_number`` is its first line's number.

        Returns the number of lines read, for the caller's count of where the next chunk starts.
        """
        count = chunk.count(b"\n")
        self.lines += count
        text = b"\n" + chunk  # every line now starts after a newline: the scan's literal start
        found = self._scan.findall(text)
        shown = len(self.unparsed_samples)
        if len(found) != count:
            found = self._split(text, source, first_number)
        refused = self._tally(found)
        if refused:
            self._refused(text, source, first_number, refused)
            # Both passes may have taken samples: keep the first ones, in line order.
            samples = self.unparsed_samples
            samples[shown:] = sorted(samples[shown:], key=lambda line: line.number)[: self.keep_unparsed - shown]
        self.parsed += len(found) - len(refused)
        return count

    def add_unparsed(self, source: str, number: int, line: bytes) -> None:
        """Count one line that is not in a chunk (the line a damaged compressed file cuts) as unparsed."""
        self.lines += 1
        self.unparsed += 1
        if len(self.unparsed_samples) < self.keep_unparsed:
            self.unparsed_samples.append(Unparsed(source, number, line.decode("utf-8", "replace")))

    def _split(self, text: bytes, source: str, first_number: int) -> list[tuple[bytes, ...]]:
        """The task lines of a chunk that also holds other lines; those are offered to readers or kept unparsed."""
        found = []
        position = 0  # the newline before the next line not yet looked at
        for match in self._scan.finditer(text):
            if match.start() != position:
                self._others(text, position, match.start(), source, first_number)
            found.append(match.groups(b""))
            position = match.end()
        if position != len(text) - 1:
            self._others(text, position, len(text) - 1, source, first_number)
        return found

    def _others(self, text: bytes, start: int, end: int, source: str, first_number: int) -> None:
        """The lines between the newlines at ``start`` and ``end``."""
        number = None
        for offset, line in enumerate(text[start + 1 : end].split(b"\n")):
            if any(reader.offer(line) for reader in self.readers):
                self.parsed += 1
                continue
            self.unparsed += 1
            if len(self.unparsed_samples) < self.keep_unparsed:
                if number is None:  # counted only when a line is shown
                    number = first_number + text.count(b"\n", 0, start)
                self.unparsed_samples.append(Unparsed(source, number + offset, line.decode("utf-8", "replace")))

    def _refused(self, text: bytes, source: str, first_number: int, refused: list[tuple[bytes, ...]]) -> None:
        """Task lines whose time the date filter refuses: unparsed, like the pipeline keeps them."""
        self.unparsed += len(refused)
        wanted = refused[: self.keep_unparsed]
        if not wanted:
            return
        for match in self._scan.finditer(text):  # found again in order, only to say where they are
            if match.groups(b"") == wanted[0]:
                number = first_number + text.count(b"\n", 0, match.start())
                line = match.group()[1:].decode("utf-8", "replace")
                self.unparsed_samples.append(Unparsed(source, number, line))
                wanted.pop(0)
                if not wanted:
                    return

    def _seconds_of(self, prefix: bytes) -> int | None:
        seconds = self._seconds.get(prefix, _MISSING)
        if seconds is _MISSING:
            if len(self._seconds) > _CACHE_LIMIT:
                self._seconds.clear()
            seconds = self._seconds[prefix] = self.clock.seconds(prefix)
        return seconds  # type: ignore[return-value]

    def _queue_ok(self, queue: bytes) -> bool:
        ok = self._queue_selected.get(queue)
        if ok is None:
            ok = self._queue_selected[queue] = bool(queue) and decode_name(queue) in self.selection.queues  # type: ignore[operator]
        return ok

    def _entry(self, task: bytes) -> tuple[Callable[[float], None], Callable[[float], None], dict[bytes, int]]:
        tally = self.tasks.get(task)
        if tally is None:
            tally = self.tasks[task] = TaskTally()
        return tally.times.open.append, tally.waits.open.append, tally.statuses

    def _tally(self, found: list[tuple[bytes, ...]]) -> list[tuple[bytes, ...]]:
        """Add the executions of ``found`` that pass the filters; return those whose time is refused."""
        refused = self._tally_all(found) if self._fast else self._tally_selected(found)
        for tally in self.tasks.values():
            tally.times.seal()
            tally.waits.seal()
        return refused

    def _tally_all(self, found: list[tuple[bytes, ...]]) -> list[tuple[bytes, ...]]:
        """``_tally_selected`` without filters, in UTC: the common case, kept to the fewest steps per line."""
        entries: dict[bytes, tuple[Callable[[float], None], Callable[[float], None], dict[bytes, int]]] = {}
        entry_of = self._entry
        for _stamp, task, task_time, status, wait_time in found:
            entry = entries.get(task)
            if entry is None:
                entry = entries[task] = entry_of(task)
            times_append, waits_append, counts = entry
            times_append(float(task_time))
            if wait_time:
                waits_append(float(wait_time))
            if status:  # failed, timeout, killed or retry
                counts[status] = counts.get(status, 0) + 1
        if found:
            stamps = [row[0] for row in found]
            self._first_last_text(min(stamps), max(stamps))
        return []

    def _first_last_text(self, first: bytes, last: bytes) -> None:
        if not self._first_text or first < self._first_text:
            self._first_text = first
            self.first = self._utc_millis(first)
        if last > self._last_text:
            self._last_text = last
            self.last = self._utc_millis(last)

    def _tally_selected(self, found: list[tuple[bytes, ...]]) -> list[tuple[bytes, ...]]:
        """Add the executions of ``found`` that pass the filters; return those whose time is refused."""
        refused: list[tuple[bytes, ...]] = []
        entries: dict[bytes, tuple[Callable[[float], None], Callable[[float], None], dict[bytes, int]]] = {}
        entry_of, seconds_of = self._entry, self._seconds_of
        utc = self.clock.is_utc
        selection = self.selection
        since_text, until_text = self._since_text, self._until_text
        since, until = selection.since, selection.until
        queue_ok: Callable[[bytes], bool] | None = self._queue_ok if selection.queues is not None else None
        statuses, systems = self._statuses, self._systems
        first_text, last_text = b"", b""
        first, last = self.first, self.last
        last_prefix, last_seconds = b"", None
        for row in found:
            stamp, task, task_time, queue, status, wait_time, system = row
            prefix = stamp[:19]
            if prefix != last_prefix:
                last_prefix, last_seconds = prefix, seconds_of(prefix)
            if last_seconds is None:
                refused.append(row)
                continue
            if queue_ok is not None and not queue_ok(queue):
                continue
            if statuses is not None and status not in statuses:
                continue
            if systems is not None and system not in systems:
                continue
            if utc:
                if (since_text is not None and stamp < since_text) or (until_text is not None and stamp >= until_text):
                    continue
                if not first_text or stamp < first_text:
                    first_text = stamp
                if stamp > last_text:
                    last_text = stamp
            else:
                millis = last_seconds * 1000 + int(stamp[20:23])
                if (since is not None and millis < since) or (until is not None and millis >= until):
                    continue
                if first is None or millis < first:
                    first = millis
                if last is None or millis > last:
                    last = millis
            entry = entries.get(task)
            if entry is None:
                entry = entries[task] = entry_of(task)
            times_append, waits_append, counts = entry
            times_append(float(task_time))
            if wait_time:
                waits_append(float(wait_time))
            if status in _NOTABLE:
                counts[status] = counts.get(status, 0) + 1
        if utc:
            if first_text:
                self._first_last_text(first_text, last_text)
        else:
            self.first, self.last = first, last
        return refused

    def _utc_millis(self, stamp: bytes) -> int:
        return self._seconds_of(stamp[:19]) * 1000 + int(stamp[20:23])  # type: ignore[operator]
