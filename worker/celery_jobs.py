"""The Celery demo: the same four tasks as ``jobs.py``, as a Celery app on RabbitMQ, and its producer.

    celery -A celery_jobs worker --concurrency 2      # the worker (compose: celery-worker)
    python celery_jobs.py [--rate 2] [--count N]       # the producer (compose: celery-producer)

The broker comes from ``CELERY_BROKER_URL``; ``DEMO_MAX_SECONDS`` (default 4) scales the
sleeps, as for the RQ demo. ``pipeline.celery.install`` is called here, in the module that
creates the app, so both the producer and the worker are instrumented. The tasks go to
the queue ``default``, as RQ's demo tasks do: the dashboards tell them apart by ``system``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from celery import Celery

import pipeline.celery

app = Celery("celery_jobs", broker=os.environ.get("CELERY_BROKER_URL", "amqp://guest:guest@localhost:5672//"))
app.conf.update(task_default_queue="default", task_ignore_result=True, broker_connection_retry_on_startup=True)
pipeline.celery.install(app)


def _max_seconds() -> float:
    return float(os.environ.get("DEMO_MAX_SECONDS", "4"))


class UploadError(RuntimeError):
    """The demo's flaky remote service said no."""


@app.task(name="celery_jobs.send_mail")
def send_mail(username: str) -> str:
    """Slow now and then: up to half the maximum."""
    time.sleep(random.uniform(0, _max_seconds() / 2))
    return "sent"


@app.task(name="celery_jobs.compute", time_limit=3)
def compute() -> str:
    """The slowest demo task: up to the maximum, past its 3 s hard time limit now and then (timeout)."""
    time.sleep(random.uniform(0, _max_seconds()))
    return "done"


@app.task(name="celery_jobs.simple_task")
def simple_task() -> str:
    """Returns at once."""
    return "done"


@app.task(name="celery_jobs.flaky_upload", autoretry_for=(UploadError,), max_retries=2, default_retry_delay=1)
def flaky_upload(name: str) -> str:
    """Refused about one time in five: retried twice (retry lines), then failed."""
    time.sleep(random.uniform(0, _max_seconds() / 8))
    if random.random() < 0.2:
        raise UploadError(f"upload of {name} refused")
    return "uploaded"


# (weight, task, args), as in producer.py.
MIX = ((3, send_mail, ("elon",)), (2, compute, ()), (4, simple_task, ()), (1, flaky_upload, ("report.pdf",)))


def main(argv: list[str] | None = None) -> int:
    """Publish the demo mix at ``--rate`` tasks per second; a broker that refuses is one line, then retried."""
    parser = argparse.ArgumentParser(description="Publish Celery demo tasks at a steady rate.")
    parser.add_argument("--rate", type=float, default=float(os.environ.get("PRODUCER_RATE", "2")))
    parser.add_argument("--count", type=int, default=int(os.environ.get("PRODUCER_COUNT", "0")))
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    weights = [weight for weight, *_ in MIX]
    interval, sent, next_at = 1.0 / args.rate, 0, time.monotonic()
    print(f"celery producer: publishing {args.rate:g} tasks/s", flush=True)
    while not args.count or sent < args.count:
        _, task, task_args = random.choices(MIX, weights)[0]
        try:
            task.apply_async(task_args, retry=False)
            sent += 1
        except Exception as exc:  # the broker is down or refuses: say so, keep going
            print(f"celery producer: publish failed: {exc}", file=sys.stderr, flush=True)
            time.sleep(1)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
