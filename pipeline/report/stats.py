"""Per-task accumulation and exact percentiles, in 8 bytes per sample.

Samples are appended to an ``array('d')``; every ``BLOCK`` samples the open array is
copied into an exactly sized block, so memory is 8 bytes per task time and 8 per wait
time plus one open array per task. Blocks are sorted, one at a time, when the figures are
computed. A percentile is then found without merging the blocks:
a binary search over the values' ordered 64-bit patterns, counting with ``bisect`` in each
sorted block.

Percentiles are exact, by linear interpolation between the two closest ranks (numpy's
default, Hyndman and Fan's type 7): for ``n`` sorted samples ``x``, ``p`` is
``x[i] + (h - i) * (x[i + 1] - x[i])`` with ``h = (n - 1) * p / 100`` and ``i = floor(h)``.
Kibana's percentile columns come from Elasticsearch's TDigest, an approximation, so they
can differ slightly on large or skewed sets.
"""

from __future__ import annotations

import math
import struct
from array import array
from bisect import bisect_right
from dataclasses import dataclass
from itertools import chain

from pipeline.lines.fields import decode_name

# Samples per block: 512 KiB less malloc's header, so a block fills whole pages.
BLOCK = (1 << 16) - 4
_STRIDE = 64  # one sample in this many picks the threshold of a high percentile
BAND_MINIMUM = 64 * _STRIDE  # fewer samples than this are simply sorted
_SIGN = 1 << 63
_DOUBLE = struct.Struct("<d")
_BITS = struct.Struct("<q")


def _order_key(value: float) -> int:
    """An integer that sorts like the float (``-0.0`` and ``0.0`` alike)."""
    bits: int = _BITS.unpack(_DOUBLE.pack(value))[0]
    return bits if bits >= 0 else -(bits & (_SIGN - 1))


def _from_order_key(key: int) -> float:
    bits = key if key >= 0 else (-key) | _SIGN
    value: float = _DOUBLE.unpack(struct.pack("<Q", bits))[0]
    return value


class Samples:
    """Seconds of one kind (task times or wait times) for one task."""

    __slots__ = ("blocks", "open", "sorted")

    def __init__(self) -> None:
        self.open = array("d")
        self.blocks: list[array[float]] = []
        self.sorted = 0  # blocks[:sorted] are sorted

    def seal(self, minimum: int = BLOCK) -> None:
        """Move the open samples into an exactly sized block once there are ``minimum`` of them.

        Blocks are sorted only when a percentile is asked for: sorting makes a Python float
        of every sample, and doing it while reading would leave the allocator's memory
        fragmented between the arrays that grow meanwhile.
        """
        if not self.open or len(self.open) < minimum:
            return
        if minimum < BLOCK:
            self.blocks.append(array("d", self.open))
            self.open = array("d")
            return
        full = len(self.open) - len(self.open) % BLOCK
        self.blocks.extend(self.open[start : start + BLOCK] for start in range(0, full, BLOCK))
        self.open = self.open[full:]

    def extend(self, other: Samples) -> None:
        """Take ``other``'s samples too (two spellings of one name)."""
        other.seal(1)
        self.seal(1)
        self._sort()
        other._sort()
        self.blocks.extend(other.blocks)
        self.sorted = len(self.blocks)

    def _sort(self) -> None:
        self.seal(1)
        for block in self.blocks[self.sorted :]:
            block[:] = array("d", sorted(block))  # same size: copied in place
        self.sorted = len(self.blocks)

    def __len__(self) -> int:
        return len(self.open) + sum(len(block) for block in self.blocks)

    def total(self) -> float:
        """The correctly rounded sum."""
        return math.fsum(math.fsum(block) for block in (*self.blocks, self.open))

    def percentile(self, percent: float) -> float | None:
        """Linear interpolation between the closest ranks; None without samples."""
        count = len(self)
        if not count:
            return None
        position = (count - 1) * percent / 100
        index = math.floor(position)
        blocks, rank = self.blocks, index
        if not self._all_sorted() and (largest := self._largest(count - index)) is not None:
            blocks, kept = largest  # only the largest samples, sorted: a high percentile's ranks are among them
            rank = index - (count - kept)
        else:
            self._sort()
        below = _smallest(blocks, rank)
        above = _smallest(blocks, rank + 1) if index + 1 < count else below
        if position == index:
            return below
        return below + (position - index) * (above - below)

    def _all_sorted(self) -> bool:
        return not self.open and self.sorted == len(self.blocks)

    def _largest(self, wanted: int) -> tuple[list[array[float]], int] | None:
        """Sorted blocks holding at least the ``wanted`` largest samples, and how many they hold.

        Only for a few (a high percentile); else None. A threshold a little below them is
        taken from every ``_STRIDE``-th sample, and only the samples at or above it are
        sorted: a few percent of all instead of all of them. Exact: every sample left out
        is below all those kept, so when at least ``wanted`` are kept, the largest of all
        are among them.
        """
        count = len(self)
        if count < BAND_MINIMUM or wanted > count // 8:
            return None
        parts = [*self.blocks, self.open]
        sample = sorted(chain.from_iterable(part[::_STRIDE] for part in parts))
        # Where ``wanted`` samples start in the sample, less four standard deviations of that
        # count and a few more, for the few samples of a very high percentile (a miss costs a sort).
        expected = wanted * len(sample) // count
        threshold = sample[max(0, len(sample) - expected - 4 * math.isqrt(expected) - 8)]
        kept = [array("d", sorted(filter(threshold.__le__, part))) for part in parts]
        kept = [block for block in kept if block]
        held = sum(map(len, kept))
        return (kept, held) if held >= wanted else None

    def maximum(self) -> float | None:
        self._sort()
        return max((block[-1] for block in self.blocks), default=None)


def _smallest(blocks: list[array[float]], rank: int) -> float:
    """The ``rank``-th smallest value (0-based) of sorted ``blocks``, by a binary search over the values' order."""
    low = min(_order_key(block[0]) for block in blocks)
    high = max(_order_key(block[-1]) for block in blocks)
    while low < high:  # the smallest value with more than ``rank`` values at or below it
        middle = (low + high) // 2
        value = _from_order_key(middle)
        if sum(bisect_right(block, value) for block in blocks) > rank:
            high = middle
        else:
            low = middle + 1
    return _from_order_key(low)


class TaskTally:
    """What the report keeps of one task while reading: times, waits, counts per status."""

    __slots__ = ("statuses", "times", "waits")

    def __init__(self) -> None:
        self.times = Samples()
        self.waits = Samples()
        self.statuses: dict[bytes, int] = {}

    def merge(self, other: TaskTally) -> None:
        self.times.extend(other.times)
        self.waits.extend(other.waits)
        for status, count in other.statuses.items():
            self.statuses[status] = self.statuses.get(status, 0) + count


@dataclass(frozen=True)
class TaskRow:
    """One row of the report: the figures of one task, seconds as floats."""

    task: str
    executions: int
    total: float
    share: float
    mean: float
    p50: float
    p95: float
    p99: float
    max: float
    failed: int
    timeout: int
    killed: int
    retry: int
    wait_mean: float | None
    wait_p95: float | None


def _figure(value: float | None) -> float:
    """A task-time figure of a row: never None, as a task has a row only once it has an execution."""
    if value is None:
        raise ValueError("a task row needs at least one execution")
    return value


def share(total: float, grand_total: float) -> float:
    """``total``'s part of ``grand_total``; 0 when there is no finite part.

    With values within ``SECONDS_LIMIT`` sums stay finite, but negative times (a clock
    set back) can bring the grand total to zero or near it while one task's total is not:
    then no share is a number, and it is 0, as it has always been for a grand total of 0.
    """
    if not grand_total:
        return 0.0
    part = total / grand_total
    return part if math.isfinite(part) else 0.0


def task_row(task: str, tally: TaskTally, grand_total: float) -> TaskRow:
    """The row for one task; ``grand_total`` is the task time of all selected executions."""
    times, waits = tally.times, tally.waits
    executions = len(times)
    total = times.total()
    wait_count = len(waits)
    return TaskRow(
        task=task,
        executions=executions,
        total=total,
        share=share(total, grand_total),
        mean=total / executions,
        p50=_figure(times.percentile(50)),
        p95=_figure(times.percentile(95)),
        p99=_figure(times.percentile(99)),
        max=_figure(times.maximum()),
        failed=tally.statuses.get(b"failed", 0),
        timeout=tally.statuses.get(b"timeout", 0),
        killed=tally.statuses.get(b"killed", 0),
        retry=tally.statuses.get(b"retry", 0),
        wait_mean=waits.total() / wait_count if wait_count else None,
        wait_p95=waits.percentile(95),
    )


SORT_KEYS = {
    "total": lambda row: row.total,
    "p95": lambda row: row.p95,
    "max": lambda row: row.max,
    "count": lambda row: row.executions,
    "wait": lambda row: row.wait_mean if row.wait_mean is not None else -math.inf,
}


def rank(rows: list[TaskRow], by: str) -> list[TaskRow]:
    """Largest first by ``by`` (one of ``SORT_KEYS``), ties by task name."""
    key = SORT_KEYS[by]
    return sorted(sorted(rows, key=lambda row: row.task), key=key, reverse=True)


def task_rows(tallies: dict[bytes, TaskTally], by: str) -> list[TaskRow]:
    """Ranked rows, one per decoded task name (two spellings of one name are one task)."""
    merged: dict[str, TaskTally] = {}
    for raw, tally in tallies.items():
        name = decode_name(raw)
        if name in merged:
            merged[name].merge(tally)
        else:
            merged[name] = tally
    grand_total = math.fsum(tally.times.total() for tally in merged.values())
    return rank([task_row(name, tally, grand_total) for name, tally in merged.items()], by)
