"""How fast ``python -m pipeline.report`` reads, and what memory it keeps, side by side in one run.

    python -m benchmarks.report [--lines 1000000] [--rounds 3]

Writes a log of real lines (``pipeline.lines.task`` formats them: 40 tasks, all four statuses,
wait times, names that need encoding), then alternates, round by round on the same file:

1. a plain ``for line in file`` loop (binary, doing nothing with the lines);
2. the report's full reading: every line parsed and its date checked, per-task tallies,
   and the whole table with exact percentiles.

It prints lines per CPU second of each (``time.process_time``: other load on a shared
machine does not count against either), their ratio, and the report's peak memory: the
maximum resident size of a subprocess reading N and 2N lines, against one reading none;
growth per execution is the slope between N and 2N lines (allocator pages and the open
arrays' fill make it vary by a byte or two), and what the tallies hold, counted exactly
(``sys.getsizeof``): bytes per sample in sealed blocks, which is what grows with executions,
and the arrays still being appended to, bounded per task.

Targets: at least 400,000 lines/s for the report on one core, memory growing by at most
16 bytes per execution (8 for its task time, 8 for its wait time).
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.task import STATUSES, TaskRun, format_fields
from pipeline.report.reader import Tally
from pipeline.report.sources import Reading, Source
from pipeline.report.stats import BLOCK, task_rows

TARGET_LINES_PER_SECOND = 400_000
TARGET_BYTES_PER_EXECUTION = 16.0
REPO = Path(__file__).resolve().parents[1]


_TASKS = [f"app.tasks.task_{index:02d}" for index in range(38)] + ["app.tasks.send mail", "app.tâches.été"]


def write_log(path: Path, count: int, seed: int = 5) -> None:
    """``count`` real task-time lines, about 100 per second of log time, in order."""
    rng = random.Random(seed)
    tasks = _TASKS
    weights = [1 / (index + 1) for index in range(len(tasks))]
    clock = LineClock()
    start = 1_795_000_000.0
    with open(path, "w", encoding="utf-8") as out:
        batch = []
        for index in range(count):
            task = rng.choices(tasks, weights)[0]
            execution = TaskRun(
                task_name=task,
                task_time=rng.expovariate(1 / (0.05 * (1 + tasks.index(task) % 7))),
                queue=rng.choice(("default", "high", "low")),
                status=rng.choices(STATUSES, (90, 6, 3, 1, 0))[0],  # no retry: RQ lines
                wait_time=rng.expovariate(10),
                job_id=f"{rng.getrandbits(128):032x}",
                worker=f"host-{rng.randrange(8)}.{rng.randrange(1000, 9999)}",
            )
            batch.append(format_line(start + index / 100, format_fields(execution), clock))
            if len(batch) == 10_000:
                out.write("\n".join(batch) + "\n")
                batch = []
        if batch:
            out.write("\n".join(batch) + "\n")


def plain_loop(path: Path) -> int:
    count = 0
    with open(path, "rb") as stream:
        for _ in stream:
            count += 1
    return count


def read(path: Path) -> Tally:
    tally = Tally(clock=LineClock())
    number = 1
    for chunk in Reading(Source(str(path)), io.BytesIO()):
        number += tally.feed(chunk, str(path), number)
    return tally


def report(path: Path) -> int:
    """The report's whole work on one file: read, tally, rank with exact percentiles."""
    tally = read(path)
    rows = task_rows(tally.tasks, "total")
    assert tally.unparsed == 0 and sum(row.executions for row in rows) == tally.lines
    return tally.lines


def retained_bytes(path: Path) -> tuple[int, int, int]:
    """After reading ``path``: bytes and samples in sealed blocks, and bytes in the arrays still open."""
    tally = read(path)
    samples = [samples for task in tally.tasks.values() for samples in (task.times, task.waits)]
    blocks = [block for kind in samples for block in kind.blocks]
    sealed = sum(sys.getsizeof(block) for block in blocks)
    return sealed, sum(len(block) for block in blocks), sum(sys.getsizeof(kind.open) for kind in samples)


def _peak_rss(path: Path) -> int:
    """Peak resident bytes of a fresh process that reads ``path`` the report's way.

    Read from the kernel's high-water mark of the process's own memory (``VmHWM``), not
    ``getrusage``, whose ``ru_maxrss`` keeps the parent's size across fork and exec.
    """
    code = (
        "import re, sys; from pathlib import Path; from benchmarks.report import report; report(Path(sys.argv[1])); "
        "print(int(re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read())[1]) * 1024)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env, check=True)
    return int(done.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000, help="lines in the generated log")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of plain loop and report")
    parser.add_argument("--json", action="store_true", help="also print the figures as one JSON line")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="report-bench-") as folder:
        log, double, empty = Path(folder, "task-time.log"), Path(folder, "double.log"), Path(folder, "empty.log")
        write_log(log, args.lines)
        write_log(double, 2 * args.lines, seed=6)
        empty.write_bytes(b"")
        size = log.stat().st_size
        print(f"log: {args.lines:,} lines, {size / 1e6:.1f} MB, {size / args.lines:.0f} bytes per line")

        plain, full = [], []
        for _ in range(args.rounds):
            for label, function in (("plain", plain_loop), ("report", report)):
                started = time.process_time()
                assert function(log) == args.lines
                rate = args.lines / (time.process_time() - started)
                (plain if label == "plain" else full).append(rate)
        plain_rate, report_rate = statistics.median(plain), statistics.median(full)

        base, single, twice = _peak_rss(empty), _peak_rss(log), _peak_rss(double)
        sealed, sealed_samples, still_open = retained_bytes(double)
        wait_share = sum(" Wait-time: " in line for line in log.open(encoding="utf-8")) / args.lines
    per_execution = (twice - single) / args.lines
    per_million = (single - base) / args.lines * 1e6
    per_sample = sealed / sealed_samples if sealed_samples else math.nan  # nothing sealed in a small log
    held_per_execution = per_sample * (1 + wait_share)

    speed_ok = report_rate >= TARGET_LINES_PER_SECOND
    memory_ok = held_per_execution <= TARGET_BYTES_PER_EXECUTION + 0.01  # block headers: 64 bytes per 64 Ki samples
    print(f"plain `for line in file` loop: {plain_rate:12,.0f} lines/s (median of {args.rounds})")
    print(f"report, full table:            {report_rate:12,.0f} lines/s (median of {args.rounds})")
    print(f"ratio report/plain loop: {report_rate / plain_rate:.3f}")
    print(
        f"peak memory: {per_million / 1e6:.1f} MB per million lines above an empty read "
        f"({base / 1e6:.0f} MB); growth {per_execution:.1f} bytes per execution (N to 2N lines)"
    )
    print(
        f"held: {per_sample:.3f} bytes per sample in sealed blocks, so {held_per_execution:.2f} per execution "
        f"({wait_share:.0%} have a wait time); arrays still open: {still_open / 1e6:.1f} MB for "
        f"{len(_TASKS)} tasks (at most {BLOCK:,} samples each)"
    )
    load = os.getloadavg()[0]
    print(f"load average {load:.1f} on {os.cpu_count()} cores (a busy machine slows both loops, unevenly)")
    print(f"target >= {TARGET_LINES_PER_SECOND:,} lines/s: {'met' if speed_ok else 'MISSED'}")
    print(
        f"target <= {TARGET_BYTES_PER_EXECUTION:.0f} bytes per execution (held): "
        f"{'met' if memory_ok else 'not measured, too few lines' if math.isnan(per_sample) else 'MISSED'}"
        f"; peak growth {per_execution:.1f}"
    )
    if args.json:
        figures = {"plain": plain_rate, "report": report_rate, "bytes_per_execution": per_execution}
        print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
