"""What a queue-monitor sample costs, beside a bare PING in the same run.

    python -m benchmarks.monitor [--queues 1,100,1000] [--big 1000000] [--repeat 20]

Starts its own redis-server and samples it as the monitor's read-only ACL user:
1, 100 and 1,000 queues of 10 jobs each, then one queue of ``--big`` jobs (ids pushed
with pipelined RPUSH; only the head jobs have hashes, which is all a sample reads) beside
one queue of 10. For each it prints the median time per sample over ``--repeat``
samples, the Redis commands per sample (``INFO commandstats`` before and after one
sample) and per queue, and the round trips per sample (writes to the socket), with the
median of a bare PING round trip measured in the same run and the ratio to it.

Targets: commands per queue the same for the big queue as for the 10-job queue; at most
3 round trips per sample whatever the number of queues. The ratio of a 100-queue sample
to one PING is printed as the cost figure to compare between runs and machines.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from redis import Redis

from harness.monitor import CountingConnection, counting_client, grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.monitor.sample import take_sample

SMALL = 10


def median_seconds(action: Callable[[], object], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def commands_of(admin: Redis, action: Callable[[], object]) -> int:
    """Commands Redis executed during ``action``, from INFO commandstats (the first INFO itself excluded)."""
    before = admin.info("commandstats")
    action()
    after = admin.info("commandstats")
    return sum(stat["calls"] for stat in after.values()) - sum(stat["calls"] for stat in before.values()) - 1


def fill(admin: Redis, queue: str, jobs: int) -> None:
    """``jobs`` ids in ``rq:queue:<queue>``; the first ``SMALL`` get job hashes with ``enqueued_at``."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ids = [str(uuid.uuid4()) for _ in range(min(jobs, SMALL))]
    with admin.pipeline(transaction=False) as pipe:
        pipe.sadd("rq:queues", f"rq:queue:{queue}")
        for job_id in ids:
            pipe.hset(f"rq:job:{job_id}", mapping={"enqueued_at": stamp, "created_at": stamp, "origin": queue})
        pipe.rpush(f"rq:queue:{queue}", *ids)
        pipe.execute()
    pushed = len(ids)
    while pushed < jobs:
        with admin.pipeline(transaction=False) as pipe:
            for _ in range(50):
                chunk = min(2000, jobs - pushed)
                if chunk <= 0:
                    break
                pipe.rpush(f"rq:queue:{queue}", *(f"filler-{pushed + i}" for i in range(chunk)))
                pushed += chunk
            pipe.execute()


def measure(admin: Redis, reader: Redis, queues: list[str] | None, repeat: int) -> dict[str, float]:
    """Time, commands and round trips of one sample (``queues``: names, or None for all of rq:queues)."""
    CountingConnection.reset()
    sample = take_sample(reader, queues)
    round_trips = CountingConnection.round_trips
    commands = commands_of(admin, lambda: take_sample(reader, queues))
    seconds = median_seconds(lambda: take_sample(reader, queues), repeat)
    return {"queues": len(sample.queues), "commands": commands, "round_trips": round_trips, "seconds": seconds}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queues", default="1,100,1000", help="queue counts to sample, comma-separated")
    parser.add_argument("--big", type=int, default=1_000_000, help="jobs in the one big queue")
    parser.add_argument("--repeat", type=int, default=20, help="samples per measurement (median)")
    args = parser.parse_args(argv)
    server = RedisServer()
    try:
        admin = server.connection()
        grant_monitor(admin)
        reader = counting_client(Redis.from_url(monitor_url(server.url)))
        ping = median_seconds(reader.ping, max(args.repeat * 10, 50))
        print(f"PING round trip: {ping * 1e6:.0f} µs (median of {max(args.repeat * 10, 50)})")
        print(
            f"{'case':<28} {'queues':>6} {'commands':>9} {'per queue':>9} {'round trips':>11} {'ms':>9} {'x PING':>8}"
        )
        results: dict[str, dict[str, float]] = {}

        def report(case: str, result: dict[str, float]) -> None:
            results[case] = result
            per_queue = (result["commands"] - 3) / max(result["queues"], 1)
            print(
                f"{case:<28} {result['queues']:>6.0f} {result['commands']:>9.0f} {per_queue:>9.1f} "
                f"{result['round_trips']:>11.0f} {result['seconds'] * 1e3:>9.3f} {result['seconds'] / ping:>8.1f}"
            )

        for count in (int(text) for text in args.queues.split(",")):
            admin.flushall()
            for number in range(count):
                fill(admin, f"q{number}", SMALL)
            report(f"{count} queues x {SMALL} jobs", measure(admin, reader, None, args.repeat))
        admin.flushall()
        fill(admin, "small", SMALL)
        started = time.perf_counter()
        fill(admin, "big", args.big)
        print(f"(filled {args.big:,} ids in {time.perf_counter() - started:.1f} s)")
        report(f"1 queue x {SMALL} jobs", measure(admin, reader, ["small"], args.repeat))
        report(f"1 queue x {args.big:,} jobs", measure(admin, reader, ["big"], args.repeat))

        small, big = results[f"1 queue x {SMALL} jobs"], results[f"1 queue x {args.big:,} jobs"]
        constant = small["commands"] == big["commands"]
        trips = max(result["round_trips"] for result in results.values())
        print(f"commands per queue constant in queue length: {'met' if constant else 'NOT MET'}")
        print(f"round trips per sample <= 3: {'met' if trips <= 3 else 'NOT MET'} (max {trips:.0f})")
        print(f"time of the big queue's sample / the small one's: {big['seconds'] / small['seconds']:.2f}")
        hundred = next((r for case, r in results.items() if r["queues"] == 100 and "queues x" in case), None)
        if hundred is not None:
            print(f"100-queue sample / one PING: {hundred['seconds'] / ping:.1f}")
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
