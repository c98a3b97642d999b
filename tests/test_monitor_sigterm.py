"""SIGTERM never leaves half a sample in the log: a sample of 2,001 lines (2,000 queues), killed at random moments."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import pytest
from redis import Redis

from harness.monitor import grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.lines.fields import decode_name
from pipeline.lines.queue import match_line
from tests.support.monitor import start_monitor, stop

pytestmark = [pytest.mark.redis]

QUEUES = 2000
SAMPLE = QUEUES + 1  # the Redis line, then one line per queue
RUNS = 8


def _samples(log: Path) -> int:
    """How many whole samples the log holds; fails on any partial or mixed one."""
    lines = log.read_bytes().split(b"\n") if log.exists() else [b""]
    assert lines[-1] == b"", "the log ends in the middle of a line"
    lines = lines[:-1]
    assert len(lines) % SAMPLE == 0, f"{len(lines)} lines: {len(lines) % SAMPLE} of a sample of {SAMPLE} left over"
    expected = [f"q{number:04d}" for number in range(QUEUES)]
    for start in range(0, len(lines), SAMPLE):
        block = [match_line(line) for line in lines[start : start + SAMPLE]]
        assert all(found is not None for found in block), start
        kinds = [kind for kind, _ in block]  # type: ignore[misc]
        assert kinds == ["redis"] + ["queue"] * QUEUES, start
        assert [decode_name(match["queue"]) for _, match in block[1:]] == expected  # type: ignore[misc]
        assert len({match["timestamp"] for _, match in block}) == 1  # type: ignore[misc]
    return len(lines) // SAMPLE


def test_sigterm_at_random_moments_leaves_only_whole_samples(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    with redis.pipeline(transaction=False) as pipe:
        for number in range(QUEUES):
            pipe.sadd("rq:queues", f"rq:queue:q{number:04d}")
        pipe.execute()
    rng = random.Random(16)
    whole = 0
    for run in range(RUNS):
        log = tmp_path / f"m{run}.log"
        monitor = start_monitor(monitor_url(redis_server.url), log, "--interval", "0.01", "--name", "m")
        try:
            if run % 2:
                # Anywhere after start-up (a SIGTERM before the handler is installed ends the
                # process by the signal, before any line): sampling, writing, sleeping.
                deadline = time.monotonic() + 60
                while not (log.exists() and log.stat().st_size):
                    assert time.monotonic() < deadline, "the monitor wrote nothing"
                    time.sleep(0.005)
                time.sleep(rng.uniform(0.0, 3.0))
            else:
                # the moment the log starts growing: in the middle of a write, if anywhere
                deadline, size = time.monotonic() + 60, log.stat().st_size if log.exists() else 0
                for _ in range(rng.randint(1, 3)):  # the first, second or third write
                    while (log.stat().st_size if log.exists() else 0) == size:
                        assert time.monotonic() < deadline, "the monitor wrote nothing"
                    size = log.stat().st_size
            os.kill(monitor.pid, signal.SIGTERM)  # one SIGTERM: a second during shutdown would kill it (-15)
            _, stderr = monitor.communicate(timeout=30)
        finally:
            if monitor.poll() is None:
                stop(monitor)
        assert monitor.returncode == 0, stderr
        whole += _samples(log)
    assert whole >= RUNS // 2  # the runs did write samples
