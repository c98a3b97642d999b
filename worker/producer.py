"""Enqueue the demo tasks at a steady rate, as a web application would.

    python producer.py [--rate 2] [--count N] [--queue default] [--url redis://redis:6379/0]

Every option also reads an environment variable (PRODUCER_RATE, PRODUCER_COUNT, RQ_QUEUE,
RQ_REDIS_URL). When Redis runs out of memory (the pile-up this project is about) the
failed enqueue is reported in one line and the producer keeps trying.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from rq import Queue

import jobs

# (weight, task, args, job timeout in seconds): compute sometimes runs past its timeout.
MIX = (
    (3, jobs.send_mail, ("elon",), 180),
    (2, jobs.compute, (), 3),
    (4, jobs.simple_task, (), 180),
    (1, jobs.flaky_upload, ("report.pdf",), 180),
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    env = os.environ
    parser = argparse.ArgumentParser(description="Enqueue demo tasks at a steady rate.")
    parser.add_argument("--rate", type=float, default=float(env.get("PRODUCER_RATE", "2")), help="tasks per second")
    parser.add_argument(
        "--count", type=int, default=int(env.get("PRODUCER_COUNT", "0")), help="stop after N (0: never)"
    )
    parser.add_argument("--queue", default=env.get("RQ_QUEUE", "default"))
    parser.add_argument("--url", default=env.get("RQ_REDIS_URL", "redis://localhost:6379/0"))
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    queue = Queue(args.queue, connection=Redis.from_url(args.url))
    weights = [weight for weight, *_ in MIX]
    interval, sent, next_at = 1.0 / args.rate, 0, time.monotonic()
    print(f"producer: enqueueing {args.rate:g} tasks/s on queue {args.queue!r}", flush=True)
    while not args.count or sent < args.count:
        _, func, func_args, timeout = random.choices(MIX, weights)[0]
        try:
            queue.enqueue(func, *func_args, job_timeout=timeout)
            sent += 1
        except ResponseError as exc:
            print(f"producer: enqueue of {func.__name__} failed: {exc}", file=sys.stderr, flush=True)
        except RedisConnectionError as exc:
            print(f"producer: Redis unreachable at {args.url}: {exc}", file=sys.stderr, flush=True)
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))
    print(f"producer: enqueued {sent} tasks", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
