"""``python -m pipeline.report``: the slowest tasks, straight from task-time logs.

Exit codes: 0 the report is complete (unparsed lines included: they are counted and can be
shown); 1 a compressed file was truncated or corrupt (the report counts every line before
the damage); 2 bad options, or a file or folder that could not be read (the others are
still read and reported).
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TextIO

from pipeline.lines.clock import LineClock, iso_millis, timezone_from_env
from pipeline.lines.task import STATUSES

from .queues import QueueLines
from .reader import Selection, Tally
from .render import RENDERERS, Report
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
        epilog="Without FILES: stdin if it is a pipe, else TASK_TIME_LOG and its rotated names. "
        "Times are read in TASK_TIME_TZ, like Logstash does. Exit 0 done, 1 a compressed file was "
        "damaged (read up to the damage), 2 bad options or a file that could not be read.",
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
        help="print the first N unparsed lines with file and line number",
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
            self.stream.write(f"\r\x1b[Kreading {name}: {lines:,} lines")
            self.stream.flush()

    def done(self) -> None:
        if self.shown:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _stdin_has_data(stdin: TextIO) -> bool:
    try:
        mode = os.fstat(stdin.fileno()).st_mode
    except (OSError, ValueError, AttributeError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISREG(mode) or stat.S_ISSOCK(mode)


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
            stderr.write(f"{PROG}: {exc} (skipped)\n")
            skipped.append(source.name)
            continue
        if reading.damage is not None:
            cut = ""
            if reading.cut_line:
                tally.add_unparsed(source.name, number, reading.cut_line)
                cut = "; the line it cuts is counted unparsed"
            progress.done()
            stderr.write(f"{PROG}: {source.name}: {reading.damage}: read {number - 1} whole lines{cut}\n")
            damaged.append(source.name)
    progress.done()
    return skipped, damaged


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
        stderr.write(f"{PROG}: {exc}\n")
        return 2
    now = time.time()
    try:
        since = parse_moment(args.since, tz, now) if args.since else None
        until = parse_moment(args.until, tz, now) if args.until else None
    except argparse.ArgumentTypeError as exc:
        stderr.write(f"{PROG}: {exc}\n")
        return 2
    if (args.top is not None and args.top < 0) or args.show_unparsed < 0:
        stderr.write(f"{PROG}: --top and --show-unparsed take a number >= 0\n")
        return 2
    selection = Selection(
        since=since,
        until=until,
        queues=frozenset(args.queue) if args.queue else None,
        statuses=frozenset(args.status) if args.status else None,
        systems=frozenset(args.system) if args.system else None,
    )
    queues = QueueLines(LineClock(tz), selection)
    tally = Tally(clock=LineClock(tz), selection=selection, keep_unparsed=args.show_unparsed, readers=[queues])

    sources, problems = discover(args.files, _stdin_has_data(stdin), environ)
    for _, problem in problems:
        stderr.write(f"{PROG}: {problem}\n")
    skipped, damaged = read_sources(sources, tally, stdin, stderr)
    left_out = [name for name, _ in problems] + skipped
    if left_out:
        stderr.write(f"{PROG}: the report leaves out {len(left_out)} input(s): {', '.join(left_out)}\n")

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
    )
    stdout.write(RENDERERS[args.format](report))
    if tally.unparsed_samples:
        shown = stdout if args.format == "table" else stderr
        shown.write(f"\nunparsed lines (first {len(tally.unparsed_samples)} of {tally.unparsed}):\n")
        for line in tally.unparsed_samples:
            shown.write(f"{line.source}:{line.number}: {line.text}\n")
    if left_out:
        return 2
    return 1 if damaged else 0


def run() -> None:
    """The ``rq-task-time-report`` console script."""
    sys.exit(main())
