"""What timing costs in Celery: ``pipeline.celery.install`` against a plain Celery worker, side by side in one run.

    python -m benchmarks.celery_overhead [--broker redis|rabbitmq] [--tasks 500] [--rounds 5] [--pairs 4]
                                         [--every 50] [--work-ms 10] [--work-tasks 100] [--calls 20000]
                                         [--plain-vs-plain] [--report-only]

Starts its own ``redis-server`` (the default broker, and RQ's, for ``TimedJob`` measured
beside it) and, with ``--broker rabbitmq``, its own RabbitMQ node (``harness.rabbitmq``).
Two measurements, in the form of ``benchmarks.job_overhead``:

1. Throughput (``benchmarks.celery_throughput``): a plain and a timed ``celery worker``
   process (solo, and prefork with one child), pinned to the same CPU, each draining a
   batch of tasks at the same time, round after round, several fresh pairs of processes
   per pool; each batch timed inside its worker by marker tasks. The ratio timed/plain is
   taken per round, of the rates and of the tasks per CPU second of each worker's
   processes (what timing adds in a real worker, where its code runs colder than in the
   loop of 2.); each median is printed with a 95% bootstrap interval (pairs, then rounds,
   drawn), beside the ratio the in-process cost alone predicts. Two passes: no-op tasks
   (``--tasks``), which give what timing adds per task in CPU and the task size from
   which the ratio reaches the target, reported; then tasks that each spend
   ``--work-ms`` of CPU (``--work-tasks``), judged. ``--plain-vs-plain`` runs a second
   plain worker in place of the timed one: the method's own noise.
2. Added cost per task, in process: Celery's tracer (what a pool process runs for every
   task: ``task_prerun``, the task, ``task_postrun``) on a no-op task, with and without
   the receivers ``install`` connects, calls interleaved one by one; the median per-call
   difference is the cost of timing the task and writing its line (to a real file). RQ's
   ``TimedJob`` against the plain ``Job`` is measured the same way in the same run, and
   the producer's stamp (``before_task_publish``) on its own. Celery and RQ are measured
   in alternating rounds, so a change in the machine's load favours neither; the medians
   of the rounds' figures are printed, and TimedJob's extra less Celery's is judged like
   a ratio, round by round, against 0.

Targets: throughput ratio >= 0.99 for tasks of 10 ms of CPU (``benchmarks.verdicts``: a
median below it whose interval reaches it is "within noise"), and an in-process cost no
higher than ``TimedJob``'s. Not for no-op tasks: Celery runs one in 0.25 to 1.5 ms of CPU,
1 % of which is less than one line's system calls cost a real worker
(docs/benchmarks.md). Exit 1 when a target is missed; ``--report-only`` prints the same and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery.app.trace import build_tracer
from redis import Redis
from rq.job import Job

import pipeline.celery
from benchmarks.celery_throughput import PoolRun, throughput
from benchmarks.verdicts import judge
from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer
from pipeline import settings
from pipeline.celery import stamp
from pipeline.job import TimedJob
from pipeline.tasklog import get_task_logger

TARGET_RATIO = 0.99
ROUNDS = 10  # alternating Celery and RQ rounds of the in-process measurement
TASKS, ROUNDS_PER_PAIR, PAIRS, EVERY = 500, 5, 4, 50  # the throughput's defaults
# The judged pass: tasks that each spend this much CPU, where timing's fixed cost per task
# (50 to 110 µs of CPU measured in real workers) is about 1 %.
WORK_MS, WORK_TASKS = 10.0, 100


def _celery_receivers(connected: bool) -> None:
    """Connect (``install``) or disconnect every receiver ``install`` connects."""
    if connected:
        pipeline.celery.install(None)
        return
    for signal_, receiver in pipeline.celery._RECEIVERS:
        signal_.disconnect(dispatch_uid=f"pipeline.celery.{receiver.__name__}")


def task_cpu_for(extra: float, target: float = TARGET_RATIO) -> float:
    """The CPU a task must cost a plain worker for ``extra`` more per task to keep the ratio at ``target``.

    ``plain / (plain + extra) >= target`` from ``plain = extra * target / (1 - target)``: 99 times
    ``extra`` for 0.99.
    """
    return extra * target / (1 - target)


def celery_cost(calls: int) -> tuple[float, float, float]:
    """Median µs of the tracer on a no-op task, the extra with the receivers, and the stamp alone."""
    from benchmarks.celery_app import app, no_op

    logging.getLogger("celery.app.trace").setLevel(logging.WARNING)
    tracer = build_tracer(no_op.name, no_op, eager=False, propagate=False, app=app, hostname="celery@bench")
    delivery = {"exchange": "", "routing_key": "celery", "priority": 0, "redelivered": False}
    plain: list[float] = []
    timed: list[float] = []
    clock = time.perf_counter
    for _ in range(calls):
        for connected, samples in ((False, plain), (True, timed)):
            _celery_receivers(connected)
            task_id = str(uuid.uuid4())
            request: dict[str, object] = {"id": task_id, "delivery_info": delivery, "hostname": "celery@bench"}
            request.update({"eta": None, stamp.HEADER: time.time()})
            started = clock()
            tracer(task_id, (), {}, request)
            samples.append(clock() - started)
    headers: dict[str, object] = {}
    properties: dict[str, object] = {}
    stamps = []
    for _ in range(calls):
        started = clock()
        stamp.stamp_message(headers=headers, properties=properties)
        stamps.append(clock() - started)
    base = statistics.median(plain)
    return base * 1e6, (statistics.median(timed) - base) * 1e6, statistics.median(stamps) * 1e6


def rq_cost(redis: Redis, calls: int) -> float:
    """µs ``TimedJob.perform()`` adds to the plain ``Job`` on a no-op job, as benchmarks.job_overhead measures it."""
    jobs = {}
    for cls in (Job, TimedJob):
        job = cls.create("builtins.len", args=("",), connection=redis, origin="cost")
        job.save()
        job.enqueued_at = job.started_at = job.created_at
        job.worker_name = "bench"
        jobs[cls] = job
    samples: dict[type, list[float]] = {cls: [] for cls in jobs}
    for _ in range(calls):
        for cls, job in jobs.items():
            started = time.perf_counter()
            job.perform()
            samples[cls].append(time.perf_counter() - started)
    return (statistics.median(samples[TimedJob]) - statistics.median(samples[Job])) * 1e6


def _lines(log: Path) -> int:
    return log.read_bytes().count(b"\n") if log.exists() else 0


def _print_throughput(
    args: argparse.Namespace, runs: list[PoolRun], lines: int, work_ms: float, celery_extra: float
) -> bool:
    """One throughput pass's table, and what timing adds per task; whether its target holds (no-ops: not judged)."""
    judged, ok = bool(work_ms), True
    other = "plain" if args.plain_vs_plain else "timed"
    kind = f"tasks of {work_ms:g} ms of CPU" if judged else "no-op tasks"
    tasks = args.work_tasks if judged else args.tasks
    target = f"target: median ratio >= {TARGET_RATIO}" if judged else "the cost per task: reported, not judged"
    print(f"throughput on {args.broker}: a plain and a {other} worker pinned to one CPU, each draining {tasks}")
    print(f"{kind} at the same time; {args.pairs} pairs of processes per pool, {args.rounds} rounds each after one")
    print(f"to warm up. Timed lines written by the workers: {lines}   {target}")
    header = f"{'pool':<10} {'ratio of':<12} {'plain':>8} {other:>8} {'median':>8} {'95% interval':>14}"
    print(f"{header} {'from cost':>10}")
    for run in runs:
        cpu = (run.plain_cpu, run.timed_cpu) if run.plain_cpu is not None and run.timed_cpu is not None else None
        rows = [("tasks/s", run.plain, run.timed, run.ratios)]
        if cpu is not None:
            rows.append(("CPU µs/task", cpu[0], cpu[1], run.cpu_ratios))
        for label, plain, timed, ratios in rows:
            verdict = judge(ratios, TARGET_RATIO)
            ok = ok and (args.plain_vs_plain or not judged or not verdict.missed)
            # What the in-process cost alone predicts, against the plain worker's CPU time per task.
            implied = "-" if cpu is None or args.plain_vs_plain else f"{1 - celery_extra / cpu[0]:.4f}"
            word = verdict.word if judged else "reported"
            word = "(plain vs plain: the method's noise)" if args.plain_vs_plain else word
            row = (
                f"{run.pool:<10} {label:<12} {plain:>8.0f} {timed:>8.0f} {verdict.median:>8.4f} {verdict.interval:>14}"
            )
            print(f"{row} {implied:>10}  {word}")
    print("(ratios timed/plain: of the rates on the shared CPU, and of the tasks per CPU second of each worker's")
    print(" processes; a ratio below 1 is what timing costs)")
    for run in runs:
        if run.plain_cpu is not None and run.timed_cpu is not None and not args.plain_vs_plain:
            extra = run.timed_cpu - run.plain_cpu
            print(
                f"{run.pool}: timing adds {extra:.0f} µs of CPU per task; the ratio reaches {TARGET_RATIO} for tasks"
                f" that cost a plain worker {max(task_cpu_for(extra), 0.0) / 1000:.1f} ms of CPU or more"
            )
    print()
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=TASKS, help=f"no-op tasks per batch (default {TASKS})")
    parser.add_argument("--rounds", type=int, default=ROUNDS_PER_PAIR, help=f"rounds per pair ({ROUNDS_PER_PAIR})")
    parser.add_argument("--pairs", type=int, default=PAIRS, help=f"pairs of worker processes per pool ({PAIRS})")
    parser.add_argument("--every", type=int, default=EVERY, help=f"a marker task every N no-ops (default {EVERY})")
    parser.add_argument(
        "--work-ms", type=float, default=WORK_MS, help=f"CPU each task of the judged pass spends (default {WORK_MS:g})"
    )
    parser.add_argument(
        "--work-tasks", type=int, default=WORK_TASKS, help=f"tasks per batch of the judged pass ({WORK_TASKS})"
    )
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis", help="the workers' broker")
    parser.add_argument("--calls", type=int, default=20000, help="tracer and perform() calls per side, in process")
    parser.add_argument("--plain-vs-plain", action="store_true", help="both workers plain: the method's own noise")
    parser.add_argument("--report-only", action="store_true", help="print the verdicts, exit 0 whatever they are")
    args = parser.parse_args(argv)
    if args.work_ms <= 0:
        parser.error("--work-ms must be above 0: the no-op pass always runs")

    folder = Path(tempfile.mkdtemp(prefix="rq-task-time-celery-bench-"))
    os.environ[settings.TASK_LOG.variable] = str(folder / "in-process.log")
    get_task_logger()
    log = folder / "task-time.log"
    server = RedisServer()
    node = None
    passes: list[tuple[float, list[PoolRun], int]] = []
    try:
        redis = server.connection()
        rounds = [(celery_cost(args.calls // ROUNDS), rq_cost(redis, args.calls // ROUNDS)) for _ in range(ROUNDS)]
        celery_base, celery_extra, stamp_cost = (statistics.median(r[0][i] for r in rounds) for i in range(3))
        rq_extra = statistics.median(r[1] for r in rounds)
        if args.broker == "rabbitmq":
            node = RabbitMQNode()
        broker = server.url if node is None else node.url
        # The same number of markers per batch in both passes.
        work_every = max(1, round(args.every * args.work_tasks / args.tasks))
        for work_ms, tasks, every in ((0.0, args.tasks, args.every), (args.work_ms, args.work_tasks, work_every)):
            before = _lines(log)
            same, work = args.plain_vs_plain, work_ms / 1000
            runs = throughput(broker, folder, tasks, args.rounds, every, args.pairs, same, work)
            passes.append((work_ms, runs, _lines(log) - before))
    finally:
        server.stop()
        if node is not None:
            node.stop()
    shutil.rmtree(folder, ignore_errors=True)

    print(f"added per task, in process ({args.calls} interleaved calls)   target: <= TimedJob's, same run")
    print(f"  Celery's tracer on a no-op task itself: {celery_base:8.1f} µs")
    print(f"  pipeline.celery (prerun + postrun + the line): {celery_extra:+8.1f} µs")
    print(f"  RQ TimedJob against Job:                      {rq_extra:+8.1f} µs")
    print(f"  the producer's stamp (before_task_publish):  {stamp_cost:+8.1f} µs per publish")
    # Higher is better, as judge takes it: TimedJob's extra less Celery's, round by round.
    margin = judge([r[1] - r[0][1] for r in rounds], 0.0)
    ok = not margin.missed
    print(f"  TimedJob's less Celery's, median of {ROUNDS} alternating rounds: {margin.median:+.1f} µs")
    print(f"  (95% interval {margin.low:+.1f}..{margin.high:+.1f} µs): {margin.word}")
    print()
    for work_ms, runs, lines in passes:
        ok = _print_throughput(args, runs, lines, work_ms, celery_extra) and ok
    print("all targets met or within noise" if ok else "a target was missed")
    if args.report_only:
        print("(--report-only: targets reported, not judged)")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
