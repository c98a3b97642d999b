"""``python -m pipeline.report``: the slowest tasks, straight from task-time logs.

Inputs: the files and folders named, ``-`` for stdin; with none, ``TASK_TIME_LOG`` and its
rotated names (every log in it, if it is a folder), whatever stdin is. A file named twice,
directly or through a folder, is read once.

Exit codes: 0 the report is complete (unparsed lines included: they are counted and can be
shown); 1 a compressed file was truncated or corrupt (the report counts every line before
the damage); 2 bad options, or a file or folder that could not be read (the others are
still read and reported); 3 the report could not be written (disk full, a closed pipe as
in ``| head``): one line on stderr says why, never a traceback.

Everything printed that comes from the data (names, unparsed lines, file names, also in
messages on stderr) is escaped (``pipeline.lines.fields.shown_text``): no escape sequence reaches the terminal.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from pipeline.lines.clock import LineClock, iso_millis, timezone_from_env
from pipeline.lines.fields import shown_text
from pipeline.lines.task import STATUSES

from . import capacity as cap
from .queues import QueueLines
from .reader import Tally
from .render import RENDERERS, Report
from .selection import LineReader, Selection
from .sources import Reading, Source, SourceError, discover
from .stats import SORT_KEYS, task_rows

PROG = "rq-task-time-report"
TABLE_TOP = 20
_RELATIVE = re.compile(r"^\s*([0-9]+(?:\.[0-9]+)?)\s*(s|m|min|h|d|w)\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "min": 60, "h": 3600, "d": 86_400, "w": 604_800}


def parse_moment(text: str, tz: datetime.tzinfo, now: float) -> int:
    """Epoch milliseconds of ``--since``/``--until``: ISO 8601 (naive means ``TASK_TIME_TZ``) or ``1h``, ``7d`` ago."""
    relative = _RELATIVE.match(text)
    if relative:
        return round((now - float(relative[1]) * _UNIT_SECONDS[relative[2]]) * 1000)
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(
            f"{text!r} is neither an ISO time (2026-11-21T23:00, 2026-11-21) nor a relative one (30m, 1h, 7d)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    try:
        return round(moment.timestamp() * 1000)
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Rank RQ tasks by the time they take, from task-time log files (no Elasticsearch needed).",
        epilog="Without FILES: TASK_TIME_LOG and its rotated names (all logs in it if it is a folder), "
        "whatever stdin is; - reads stdin. A file named twice, directly or through a folder, is read once. "
        "Times are read in TASK_TIME_TZ, like Logstash does. Exit 0 done, 1 a compressed file was "
        "damaged (read up to the damage), 2 bad options or a file that could not be read, "
        "3 the report could not be written (disk full, closed pipe).",
    )
    parser.add_argument("files", nargs="*", metavar="FILE", help="log files (.gz too), folders of logs, - for stdin")
    parser.add_argument("--by", choices=sorted(SORT_KEYS), default="total", help="rank by (default: total)")
    parser.add_argument(
        "--top",
        type=int,
        metavar="N",
        help=f"only the first N tasks (table default {TABLE_TOP}, json and csv default all; 0 means all)",
    )
    parser.add_argument("--since", metavar="TIME", help="only executions at or after TIME (ISO 8601, or 1h, 7d ago)")
    parser.add_argument("--until", metavar="TIME", help="only executions before TIME")
    parser.add_argument("--queue", action="append", metavar="NAME", help="only this queue (repeatable)")
    parser.add_argument("--status", action="append", choices=STATUSES, help="only this status (repeatable)")
    parser.add_argument(
        "--system", action="append", metavar="NAME", help="only this task system: celery, or rq (repeatable)"
    )
    parser.add_argument("--format", choices=sorted(RENDERERS), default="table", help="output format (default: table)")
    parser.add_argument(
        "--show-unparsed",
        type=int,
        default=0,
        metavar="N",
        help="print the first N unparsed lines with file and line number (control characters escaped)",
    )
    # --capacity: pipeline.report.capacity
    parser.add_argument("--capacity", action="store_true", help="add how many workers each queue keeps busy")
    parser.add_argument(
        "--target-utilization",
        type=float,
        default=cap.DEFAULT_TARGET,
        metavar="F",
        help=f"with --capacity: the busy share workers are sized for (default {cap.DEFAULT_TARGET})",
    )
    return parser


class Progress:
    """A progress line on stderr, only when stderr is a terminal and the read is long."""

    def __init__(self, stream: TextIO, delay: float = 1.0, every: float = 0.25) -> None:
        self.stream = stream
        self.enabled = stream.isatty()
        self.start = time.monotonic()
        self.delay, self.every = delay, every
        self.next = self.start + delay
        self.shown = False

    def update(self, name: str, lines: int) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if now >= self.next:
            self.next = now + self.every
            self.shown = True
            self.stream.write(f"\r\x1b[Kreading {shown_text(name)}: {lines:,} lines")
            self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _say(stderr: TextIO, text: str) -> None:
    """A message on stderr; one that cannot be written (stderr closed or full) is dropped, not raised."""
    try:
        stderr.write(text)
        stderr.flush()
    except (OSError, ValueError):
        pass


def read_sources(sources: list[Source], tally: Tally, stdin: TextIO, stderr: TextIO) -> tuple[list[str], list[str]]:
    """Feed every source to ``tally``; return the names skipped and the names damaged."""
    skipped, damaged = [], []
    progress = Progress(stderr)
    for source in sources:
        reading = Reading(source, stdin.buffer)
        number = 1
        try:
            for chunk in reading:
                number += tally.feed(chunk, source.name, number)
                progress.update(source.name, tally.lines)
        except SourceError as exc:
            progress.done()
            _say(stderr, f"{PROG}: {exc} (skipped)\n")
            skipped.append(source.name)
            continue
        if reading.damage is not None:
            cut = ""
            if reading.cut_line:
                tally.add_unparsed(source.name, number, reading.cut_line)
                cut = "; the line it cuts is counted unparsed"
            progress.done()
            _say(stderr, f"{PROG}: {shown_text(source.name)}: {reading.damage}: read {number - 1} whole lines{cut}\n")
            damaged.append(source.name)
    progress.done()
    return skipped, damaged


WRITE_FAILED = 3


def _reason(exc: OSError) -> str:
    if exc.errno is not None:
        return os.strerror(exc.errno)
    return str(exc) or type(exc).__name__


def write_report(text: str, tally: Tally, format_name: str, stdout: TextIO, stderr: TextIO) -> None:
    """The report, then the unparsed lines asked for (escaped), flushed; ``OSError`` if they cannot be written."""
    stdout.write(text)
    if tally.unparsed_samples:
        shown = stdout if format_name == "table" else stderr
        shown.write(f"\nunparsed lines (first {len(tally.unparsed_samples)} of {tally.unparsed}):\n")
        for line in tally.unparsed_samples:
            shown.write(f"{shown_text(line.source)}:{line.number}: {shown_text(line.text)}\n")
        shown.flush()
    stdout.flush()


def main(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """Run the report; return the exit code."""
    environ = os.environ if environ is None else environ
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        tz = timezone_from_env(environ)
    except ValueError as exc:
        _say(stderr, f"{PROG}: {exc}\n")
        return 2
    now = time.time()
    try:
        since = parse_moment(args.since, tz, now) if args.since else None
        until = parse_moment(args.until, tz, now) if args.until else None
    except argparse.ArgumentTypeError as exc:
        _say(stderr, f"{PROG}: {exc}\n")
        return 2
    if (args.top is not None and args.top < 0) or args.show_unparsed < 0:
        _say(stderr, f"{PROG}: --top and --show-unparsed take a number >= 0\n")
        return 2
    selection = Selection(
        since=since,
        until=until,
        queues=frozenset(args.queue) if args.queue else None,
        statuses=frozenset(args.status) if args.status else None,
        systems=frozenset(args.system) if args.system else None,
    )
    queues = QueueLines(LineClock(tz), selection)
    readers: list[LineReader] = [queues]
    capacity, seen = None, None
    if args.capacity:  # --capacity: pipeline.report.capacity
        if not 0 < args.target_utilization <= 1:
            stderr.write(f"{PROG}: --target-utilization takes a fraction in (0, 1], e.g. 0.7\n")
            return 2
        capacity, seen = cap.CapacityTally(), cap.CapacityMonitor(LineClock(tz), since, until, selection.queues)
        readers.insert(0, seen)
    tally = Tally(
        clock=LineClock(tz),
        selection=selection,
        keep_unparsed=args.show_unparsed,
        readers=readers,
        executions=capacity.add if capacity is not None else None,
    )

    sources, problems = discover(args.files, environ)
    for _, problem in problems:
        _say(stderr, f"{PROG}: {problem}\n")
    skipped, damaged = read_sources(sources, tally, stdin, stderr)
    left_out = [name for name, _ in problems] + skipped
    if left_out:
        shown = ", ".join(map(shown_text, left_out))
        _say(stderr, f"{PROG}: the report leaves out {len(left_out)} input(s): {shown}\n")

    rows = task_rows(tally.tasks, args.by)
    top = args.top if args.top is not None else (TABLE_TOP if args.format == "table" else 0)
    report = Report(
        rows=rows[:top] if top else rows,
        tasks=len(rows),
        lines=tally.lines,
        parsed=tally.parsed,
        unparsed=tally.unparsed,
        first=iso_millis(tally.first) if tally.first is not None else None,
        last=iso_millis(tally.last) if tally.last is not None else None,
        by=args.by,
        queues=queues.rows(),
        redis=queues.redis_rows(),
    )
    if capacity is not None:  # --capacity: pipeline.report.capacity
        window = cap.window_seconds(since, until, tally.first, tally.last)
        start, end = (since, until) if since is not None and until is not None else (tally.first, tally.last)
        report.capacity = cap.capacity_rows(capacity, window, args.target_utilization, seen)
        report.capacity_table = cap.table(report.capacity, window, args.target_utilization, start, end)
    try:
        write_report(RENDERERS[args.format](report), tally, args.format, stdout, stderr)
    except OSError as exc:
        _say(stderr, f"{PROG}: cannot write the report: {_reason(exc)}\n")  # if stderr is gone too, the code says it
        return WRITE_FAILED
    if left_out:
        return 2
    return 1 if damaged else 0


def run() -> None:
    """The ``rq-task-time-report`` console script."""
    code = main()
    if code == WRITE_FAILED:
        # What could not be written is still buffered: point stdout at /dev/null so the
        # interpreter's flush at exit succeeds instead of printing another error.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError):
            pass
    sys.exit(code)
