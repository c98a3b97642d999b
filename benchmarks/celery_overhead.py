"""What timing costs in Celery: ``pipeline.celery.install`` against a plain Celery worker, side by side in one run.

    python -m benchmarks.celery_overhead [--broker redis|rabbitmq] [--tasks 400] [--pairs 10] [--calls 20000]
                                         [--report-only]

Starts its own ``redis-server`` (the default broker, and RQ's, for ``TimedJob`` measured
beside it) and, with ``--broker rabbitmq``, its own RabbitMQ node (``harness.rabbitmq``).
Two measurements, in the form of ``benchmarks.job_overhead``:

1. Throughput: batches of no-op tasks (``benchmarks.celery_app``) drained by a real
   ``celery worker`` process on the same broker, plain (``CELERY_BENCH_PLAIN=1``: the same
   module without ``install``) and timed alternating batch by batch, for the solo pool and
   prefork with one child. Each batch is timed inside the worker, from a marker task
   before the no-ops to one after them, so the worker's start-up is left out. The ratio
   timed/plain is taken per pair; the median over the pairs is printed.
2. Added cost per task, in process: Celery's tracer (what a pool process runs for every
   task: ``task_prerun``, the task, ``task_postrun``) on a no-op task, with and without
   the receivers ``install`` connects, calls interleaved one by one; the median per-call
   difference is the cost of timing the task and writing its line (to a real file). RQ's
   ``TimedJob`` against the plain ``Job`` is measured the same way in the same run, and
   the producer's stamp (``before_task_publish``) on its own. Celery and RQ are measured
   in alternating rounds, and the median of the rounds' figures is printed, so a change
   in the machine's load favours neither.

Targets: throughput ratio >= 0.99, and an in-process cost no higher than ``TimedJob``'s.
Exit 1 when a target is missed; ``--report-only`` prints the same and exits 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from celery.app.trace import build_tracer
from redis import Redis
from rq.job import Job

import pipeline.celery
from harness.rabbitmq import RabbitMQNode, free_port
from pipeline import settings
from pipeline.celery import stamp
from pipeline.job import TimedJob
from pipeline.tasklog import get_task_logger

TARGET_RATIO = 0.99
ROUNDS = 5  # alternating Celery and RQ rounds of the in-process measurement
REPO = Path(__file__).resolve().parents[1]


def _celery_receivers(connected: bool) -> None:
    """Connect (``install``) or disconnect every receiver ``install`` connects."""
    if connected:
        pipeline.celery.install(None)
        return
    for signal_, receiver in pipeline.celery._RECEIVERS:
        signal_.disconnect(dispatch_uid=f"pipeline.celery.{receiver.__name__}")


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
            request = {"id": task_id, "delivery_info": delivery, "hostname": "celery@bench", "eta": None}
            request[stamp.HEADER] = time.time()
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


def _batch(broker: str, folder: Path, pool: str, plain: bool, tasks: int, index: int) -> float:
    """Tasks per second of one worker process draining one batch, timed between two marker tasks."""
    from benchmarks.celery_app import mark, no_op

    queue = f"bench-{pool}-{index}-{'plain' if plain else 'timed'}"
    marks = folder / f"{queue}.marks"
    with no_op.app.producer_or_acquire() as producer:
        mark.apply_async((str(marks),), queue=queue, producer=producer)
        for _ in range(tasks):
            no_op.apply_async(queue=queue, producer=producer)
        mark.apply_async((str(marks),), queue=queue, producer=producer)
    env = {**os.environ, "PYTHONPATH": str(REPO), "CELERY_BENCH_BROKER": broker}
    env.update({"CELERY_BENCH_PLAIN": "1" if plain else "0", settings.TASK_LOG.variable: str(folder / "task-time.log")})
    command = [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "--pool", pool, "-Q", queue]
    command += ["--concurrency", "1", "--loglevel", "WARNING", "--without-gossip", "--without-mingle"]
    worker = subprocess.Popen(command, env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not (marks.exists() and marks.read_text().count("\n") >= 2):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError(f"the {pool} worker did not drain {queue}")
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    first, last = (float(line) for line in marks.read_text().split())
    return tasks / (last - first)


def throughput(broker: str, folder: Path, tasks: int, pairs: int) -> list[tuple[str, float, float, list[float]]]:
    """Per pool: median plain and timed tasks/s and the timed/plain ratio of every pair."""
    from benchmarks.celery_app import app

    app.conf.broker_url = broker
    rows = []
    for pool in ("solo", "prefork"):
        ratios, plain_rates, timed_rates = [], [], []
        for index in range(pairs):
            order = [True, False] if index % 2 == 0 else [False, True]  # drift favours neither
            rates = {plain: _batch(broker, folder, pool, plain, tasks, index) for plain in order}
            plain_rates.append(rates[True])
            timed_rates.append(rates[False])
            ratios.append(rates[False] / rates[True])
        rows.append((pool, statistics.median(plain_rates), statistics.median(timed_rates), ratios))
    return rows


def _redis_server(folder: Path) -> tuple[subprocess.Popen[bytes], Redis]:
    """A private ``redis-server`` for RQ's in-process measurement (the Redis harness lives with the tests)."""
    port = free_port()
    process = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )
    redis = Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            redis.ping()
            return process, redis
        except Exception:
            if time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=400, help="no-op tasks per batch (default 400)")
    parser.add_argument("--pairs", type=int, default=10, help="alternating plain/timed batch pairs per pool")
    parser.add_argument("--broker", choices=("redis", "rabbitmq"), default="redis", help="the workers' broker")
    parser.add_argument("--calls", type=int, default=20000, help="tracer and perform() calls per side, in process")
    parser.add_argument("--report-only", action="store_true", help="print the verdicts, exit 0 whatever they are")
    args = parser.parse_args(argv)

    folder = Path(tempfile.mkdtemp(prefix="rq-task-time-celery-bench-"))
    os.environ[settings.TASK_LOG.variable] = str(folder / "in-process.log")
    get_task_logger()
    redis_process, redis = _redis_server(folder)
    node = None
    try:
        rounds = [(celery_cost(args.calls // ROUNDS), rq_cost(redis, args.calls // ROUNDS)) for _ in range(ROUNDS)]
        celery_base, celery_extra, stamp_cost = (statistics.median(r[0][i] for r in rounds) for i in range(3))
        rq_extra = statistics.median(r[1] for r in rounds)
        if args.broker == "rabbitmq":
            node = RabbitMQNode()
            broker = node.url
        else:
            broker = f"redis://127.0.0.1:{redis.connection_pool.connection_kwargs['port']}/0"
        rows = throughput(broker, folder, args.tasks, args.pairs)
    finally:
        redis_process.terminate()
        redis_process.wait(10)
        if node is not None:
            node.stop()
    lines = (folder / "task-time.log").read_bytes().count(b"\n") if (folder / "task-time.log").exists() else 0
    shutil.rmtree(folder, ignore_errors=True)

    print(f"added per task, in process ({args.calls} interleaved calls)   target: <= TimedJob's, same run")
    print(f"  Celery's tracer on a no-op task itself: {celery_base:8.1f} µs")
    print(f"  pipeline.celery (prerun + postrun + the line): {celery_extra:+8.1f} µs")
    print(f"  RQ TimedJob against Job:                      {rq_extra:+8.1f} µs")
    print(f"  the producer's stamp (before_task_publish):  {stamp_cost:+8.1f} µs per publish")
    ok = celery_extra <= rq_extra
    print(f"  {'met' if ok else 'missed'} (medians of {ROUNDS} alternating rounds)")
    print()
    print(f"throughput on {args.broker}, {args.pairs} alternating pairs of {args.tasks} no-op tasks per pool")
    print(f"timed lines written by the workers: {lines}   target: median ratio >= {TARGET_RATIO}")
    print(f"{'pool':<10} {'plain/s':>8} {'timed/s':>8} {'median ratio':>12} {'min..max':>14} {'from cost':>10}")
    for pool, plain, timed, ratios in rows:
        ratio = statistics.median(ratios)
        implied = 1 - celery_extra * 1e-6 * plain
        verdict = "met" if ratio >= TARGET_RATIO else "missed"
        ok = ok and ratio >= TARGET_RATIO
        spread = f"{min(ratios):.3f}..{max(ratios):.3f}"
        print(f"{pool:<10} {plain:>8.0f} {timed:>8.0f} {ratio:>12.4f} {spread:>14} {implied:>10.4f}  {verdict}")
    print()
    print("all targets met" if ok else "a target was missed")
    if args.report_only:
        print("(--report-only: targets reported, not judged)")
        return 0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
