"""The throughput half of ``benchmarks.celery_overhead``: a plain and a timed ``celery worker`` side by side.

Per pool (solo, prefork with one child), a plain worker (``CELERY_BENCH_PLAIN=1``: the
app module without ``install``) and a timed one, each on its own queue, drain a batch of
no-op tasks each at the same time, round after round. Both are pinned to the same CPU
(their pool children inherit it), so the scheduler interleaves them a few milliseconds
apart and whatever else the machine runs slows both alike: plain against plain
(``--plain-vs-plain``) agrees within a few tenths of a percent. Fed one after the other
instead, a worker's speed on a shared 2-core machine moves by tens of percent from batch
to batch with the load on the other core, which no batch size or warm-up removes.

Two ratios per round: of the rates (tasks per second of each worker on the shared CPU),
and of the tasks per CPU second (each worker's processes, ``/proc/*/schedstat``). The
first depends on how the scheduler splits the CPU between the two, which need not be
evenly; the second does not, and is what a worker bound by its CPU would see. Both err on
the low side against a worker alone on an idle machine: the two share one core's caches,
so the timed worker's extra code runs colder.

Each batch is timed inside its worker (``benchmarks.celery_app``): a gate task holds the
worker while the batch is published behind it and stamps the start when one file
releases both; a marker task after every ``every`` no-ops stamps progress. Each rate is
counted over the window in which both were draining (the first to finish then has the
CPU to itself, which would flatter the slower one). Each pair of processes runs one round
to warm up first, left out; several fresh pairs run one after the other, since one
process can run a few tenths of a percent faster than another for good (its memory
layout).
"""

from __future__ import annotations

import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from signal import SIGTERM
from typing import NamedTuple

from pipeline import settings

REPO = Path(__file__).resolve().parents[1]


class PoolRun(NamedTuple):
    """One pool: median tasks/s; per round, grouped by pair, the ratios timed/plain of the rates and of the
    tasks per CPU second; CPU µs per task of each worker (None without ``/proc``: then no CPU ratios)."""

    pool: str
    plain: float
    timed: float
    ratios: list[list[float]]
    cpu_ratios: list[list[float]]
    plain_cpu: float | None
    timed_cpu: float | None


def _cpu_seconds(pid: int) -> float | None:
    """CPU seconds a process, its threads and its children ran so far (``/proc/*/schedstat``, in ns); None without."""
    try:
        threads = Path(f"/proc/{pid}/task").iterdir()
        used = sum(int((thread / "schedstat").read_text().split()[0]) for thread in threads) / 1e9
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except (OSError, ValueError, IndexError):
        return None
    for child in children:
        used += _cpu_seconds(int(child)) or 0.0
    return used


class _Worker:
    """One long-lived ``celery worker`` process on its own queue (``-Q``), fed round by round."""

    def __init__(self, broker: str, folder: Path, pool: str, plain: bool, name: str) -> None:
        self.queue = f"bench-{pool}-{name}"
        env = {**os.environ, "PYTHONPATH": str(REPO), "CELERY_BENCH_BROKER": broker, "PYTHONHASHSEED": "0"}
        env["CELERY_BENCH_PLAIN"] = "1" if plain else "0"
        env[settings.TASK_LOG.variable] = str(folder / "task-time.log")
        command = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "--pool", pool]
        command += ["-Q", self.queue, "-n", f"{name}@bench", "--concurrency", "1", "--loglevel", "WARNING"]
        command += ["--without-gossip", "--without-mingle"]
        self.process = subprocess.Popen(
            command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def publish(self, go: Path, tasks: int, every: int, work: float = 0.0) -> Path:
        """Queue a gate on ``go``, then ``tasks`` no-ops (or tasks of ``work`` CPU seconds) with a marker
        after every ``every``; the marks' file."""
        from benchmarks.celery_app import gate, mark, no_op
        from benchmarks.celery_app import work as busy

        marks = go.with_suffix(f".{self.queue}")
        with no_op.app.producer_or_acquire() as producer:
            gate.apply_async((str(go), str(marks)), queue=self.queue, producer=producer)
            for done in range(1, tasks + 1):
                if work:
                    busy.apply_async((work,), queue=self.queue, producer=producer)
                else:
                    no_op.apply_async(queue=self.queue, producer=producer)
                if done % every == 0 or done == tasks:
                    mark.apply_async((str(marks),), queue=self.queue, producer=producer)
        return marks

    def marks(self, marks: Path, count: int) -> list[float]:
        """The ``count`` times written to ``marks``, once they all are (the worker's monotonic clock)."""
        deadline = time.monotonic() + 300
        while not (marks.exists() and marks.read_text().count("\n") >= count):
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise RuntimeError(f"the worker did not drain {self.queue}")
            time.sleep(0.01)
        return [float(line) for line in marks.read_text().split()]

    def stop(self) -> None:
        """Warm shutdown; killed if it takes longer than 30 s."""
        self.process.send_signal(SIGTERM)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def counts(tasks: int, every: int) -> list[int]:
    """No-ops done at each mark of a batch: 0 at the gate, then every ``every``, and all of them at the end."""
    return [*range(0, tasks, every), tasks]


def _done_at(marks: list[float], done: list[int], moment: float) -> float:
    """No-ops done by ``moment``, read off the marks (linear between two)."""
    index = 1
    while index < len(marks) - 1 and marks[index] < moment:
        index += 1
    before, after = marks[index - 1], marks[index]
    share = min(max((moment - before) / (after - before), 0.0), 1.0)
    return done[index - 1] + (done[index] - done[index - 1]) * share


def rates(plain: list[float], timed: list[float], done: list[int]) -> tuple[float, float]:
    """Tasks per second of each worker over the window in which both were draining their batch."""
    start, end = max(plain[0], timed[0]), min(plain[-1], timed[-1])
    drained = [_done_at(marks, done, end) - _done_at(marks, done, start) for marks in (plain, timed)]
    return drained[0] / (end - start), drained[1] / (end - start)


def _start(broker: str, folder: Path, pool: str, same: bool) -> list[_Worker]:
    """The plain and the timed worker (plain too with ``same``), both pinned to the last CPU this process may use."""
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if allowed:
        os.sched_setaffinity(0, {max(allowed)})  # inherited by the workers and their pool children
    try:
        return [_Worker(broker, folder, pool, plain or same, "plain" if plain else "timed") for plain in (True, False)]
    finally:
        if allowed:
            os.sched_setaffinity(0, allowed)


def _rounds(
    workers: list[_Worker], folder: Path, tasks: int, every: int, rounds: int, work: float
) -> list[list[float]]:
    """Per round after one to warm up: plain and timed tasks/s, then their CPU seconds (NaN without /proc)."""
    done, figures = counts(tasks, every), []
    for index in range(rounds + 1):
        go = folder / f"{workers[0].queue}-{index}.go"
        order = workers if index % 2 == 0 else workers[::-1]  # who is queued first favours neither
        files = {worker.queue: worker.publish(go, tasks, every, work) for worker in order}
        before = [_cpu_seconds(worker.process.pid) for worker in workers]
        go.touch()
        plain_marks, timed_marks = (worker.marks(files[worker.queue], len(done)) for worker in workers)
        after = [_cpu_seconds(worker.process.pid) for worker in workers]
        for used in (go, *files.values()):
            used.unlink()
        if index:
            cpu = [math.nan if b is None or a is None else a - b for b, a in zip(before, after, strict=True)]
            figures.append([*rates(plain_marks, timed_marks, done), *cpu])
    return figures


def throughput(
    broker: str, folder: Path, tasks: int, rounds: int, every: int, pairs: int, same: bool = False, work: float = 0.0
) -> list[PoolRun]:
    """Per pool, ``pairs`` fresh pairs of workers one after the other, each ``rounds`` rounds of ``tasks`` no-ops
    (or, with ``work``, tasks that each spend that many seconds of CPU).

    ``same`` makes the timed worker plain too: the ratios then show the method's own noise.
    """
    from benchmarks.celery_app import app

    app.conf.broker_url = broker
    runs = []
    for pool in ("solo", "prefork"):
        figures = []
        for _ in range(pairs):
            workers = _start(broker, folder, pool, same)
            try:
                figures.append(_rounds(workers, folder, tasks, every, rounds, work))
            finally:
                for worker in workers:
                    worker.stop()
        flat = [round_ for pair in figures for round_ in pair]
        plain, timed, plain_cpu, timed_cpu = ([round_[column] for round_ in flat] for column in range(4))
        known = not math.isnan(sum(plain_cpu) + sum(timed_cpu))
        per_task = [sum(cpu) / (len(cpu) * tasks) * 1e6 if known else None for cpu in (plain_cpu, timed_cpu)]
        ratios = [[round_[1] / round_[0] for round_ in pair] for pair in figures]
        cpu_ratios = [[round_[2] / round_[3] for round_ in pair] for pair in figures] if known else []
        runs.append(PoolRun(pool, statistics.median(plain), statistics.median(timed), ratios, cpu_ratios, *per_task))
    return runs
