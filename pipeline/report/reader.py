"""The report's reading of task-time lines: chunks of whole lines in, per-task tallies out.

Work per line is kept small, as a log holds millions of lines: one regex scan per chunk
(``findall`` over many lines at once), the date checked once per distinct second, names
kept as the bytes they are written as (decoded once, at the end), and in UTC times compared
as the fixed-width strings they are. Only a chunk that holds an unparsed line is scanned
a second time, line by line, to find it.

The first scan takes seconds only as plain decimals of at most 15 digits before the point
(``BOUNDED_SECONDS``: surely within ``SECONDS_LIMIT``), so it needs no range check per
line. A chunk with other numbers (exponents, long ones) is scanned again with the
pipeline's own seconds pattern, and each such line's values checked against the limit: a
line beyond it is unparsed, as the pipeline keeps it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from typing import Final

from pipeline.lines.clock import LineClock, iso_millis
from pipeline.lines.fields import decode_name

from . import scan
from .scan import NOTABLE, TASK_TIME_GROUP, in_range
from .selection import LineReader, Selection, Unparsed
from .stats import TaskTally

_YEAR_0 = -62_167_219_200_000  # 0000-01-01T00:00:00Z in epoch milliseconds
_YEAR_10000 = 253_402_300_800_000
_CACHE_LIMIT = 4096  # lines come mostly in order: a small cache of seconds is enough


class _Missing(Enum):
    """Not in the cache yet (None is a cached answer: a time the date filter refuses)."""

    MISSING = 0


_MISSING: Final = _Missing.MISSING


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
    # --capacity (pipeline.report.capacity): given (end millis, queue, task time) of the selected executions per chunk.
    executions: Callable[[list[tuple[int, bytes, bytes]]], None] | None = None

    def __post_init__(self) -> None:
        self._seconds: dict[bytes, int | None] = {}
        self._queue_selected: dict[bytes, bool] = {}
        self._first_text = self._last_text = b""
        # Unfiltered in UTC: the regex takes valid times only, and nothing else needs a look per line.
        self._fast = self.clock.is_utc and self.selection == Selection() and self.executions is None
        self._scan = scan.SCAN_FAST if self._fast else scan.SCAN
        self._scan_any = scan.SCAN_FAST_ANY if self._fast else scan.SCAN_ANY
        self._wait_group = scan.FAST_WAIT_TIME_GROUP if self._fast else scan.WAIT_TIME_GROUP
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
        for match in self._scan_any.finditer(text):
            if match.start() != position:
                self._others(text, position, match.start(), source, first_number)
            groups = match.groups(b"")
            if in_range(groups[TASK_TIME_GROUP]) and in_range(groups[self._wait_group]):
                found.append(groups)
            else:  # a number beyond SECONDS_LIMIT: unparsed, as the pipeline's range check keeps it
                self._add_unparsed_at(text, match.start(), source, first_number)
            position = match.end()
        if position != len(text) - 1:
            self._others(text, position, len(text) - 1, source, first_number)
        return found

    def _add_unparsed_at(self, text: bytes, start: int, source: str, first_number: int) -> None:
        """Count the task line at the newline ``start`` unparsed."""
        self.unparsed += 1
        if len(self.unparsed_samples) < self.keep_unparsed:
            number = first_number + text.count(b"\n", 0, start)
            line = text[start + 1 : text.index(b"\n", start + 1)]
            self.unparsed_samples.append(Unparsed(source, number, line.decode("utf-8", "replace")))

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
        for match in self._scan_any.finditer(text):  # found again in order, only to say where they are
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
        return seconds

    def _queue_ok(self, queue: bytes) -> bool:
        ok = self._queue_selected.get(queue)
        if ok is None:
            queues = self.selection.queues
            ok = self._queue_selected[queue] = bool(queue) and queues is not None and decode_name(queue) in queues
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
        kept: list[tuple[int, bytes, bytes]] | None = [] if self.executions is not None else None
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
            if status in NOTABLE:
                counts[status] = counts.get(status, 0) + 1
            if kept is not None:
                kept.append((last_seconds * 1000 + int(stamp[20:23]), queue, task_time))
        if kept and self.executions is not None:
            self.executions(kept)
        if utc:
            if first_text:
                self._first_last_text(first_text, last_text)
        else:
            self.first, self.last = first, last
        return refused

    def _utc_millis(self, stamp: bytes) -> int:
        seconds = self._seconds_of(stamp[:19])
        assert seconds is not None, "first and last are stamps the date filter takes"
        return seconds * 1000 + int(stamp[20:23])
