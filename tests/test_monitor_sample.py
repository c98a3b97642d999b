"""The queue monitor's sample, read as a read-only ACL user from a real redis-server.

State is made by real RQ calls and a real ``rq worker``; where a state cannot be had in a
test's time (a registry entry from an hour ago) it is written with the raw commands RQ
itself uses, by the admin connection, never by the monitor.
"""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import NoPermissionError
from rq import Queue

from harness.monitor import CountingConnection, counting_client, grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.monitor import acl
from pipeline.monitor.rq_keys import COMMANDS_PER_QUEUE
from pipeline.monitor.sample import take_sample
from tests import tasks
from tests.support.monitor import read_events, run_monitor
from tests.support.workers import run_burst_worker, start_worker, stop_process


@pytest.fixture
def reader(redis: Redis, redis_server: RedisServer) -> Redis:
    """A connection as the monitor's ACL user."""
    grant_monitor(redis)
    return Redis.from_url(monitor_url(redis_server.url))


def _rq_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _wait(predicate, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


@pytest.mark.redis
def test_the_acl_user_can_read_rq_keys_and_info_but_not_write_or_scan(redis: Redis, reader: Redis) -> None:
    Queue("default", connection=redis).enqueue(tasks.no_op)
    assert reader.llen("rq:queue:default") == 1
    assert "used_memory" in reader.info()
    for forbidden in (
        lambda: reader.set("rq:queue:x", "1"),
        lambda: reader.lpop("rq:queue:default"),
        lambda: reader.keys("*"),
        lambda: reader.get("not-rq"),
        lambda: reader.config_get("maxmemory"),
        lambda: reader.flushall(),
    ):
        with pytest.raises(NoPermissionError):
            forbidden()
    assert redis.llen("rq:queue:default") == 1


@pytest.mark.redis
def test_a_sample_reads_every_field(redis: Redis, reader: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    now = datetime.now(UTC)
    work = Queue("work", connection=redis)
    # failed: a real worker runs a failing job
    work.enqueue(tasks.fail, "boom")
    assert run_burst_worker(redis_server.url, tmp_path / "t.log", queues=["work"]).returncode == 0
    # waiting: three jobs; the head one waited 100 s, the second's hash is gone
    head = work.enqueue(tasks.no_op)
    redis.hset(f"rq:job:{head.id}", "enqueued_at", _rq_time(now - timedelta(seconds=100)))
    gone = work.enqueue(tasks.no_op)
    redis.delete(f"rq:job:{gone.id}")
    work.enqueue(tasks.no_op)
    redis.lmove("rq:queue:work", "rq:queue:work", "RIGHT", "LEFT")  # the last enqueued first: at_front
    # scheduled: one overdue (no scheduler runs here), one in an hour; deferred: waits for a job
    work.enqueue_at(now - timedelta(minutes=5), tasks.no_op)
    work.enqueue_in(timedelta(hours=1), tasks.no_op)
    Queue("other", connection=redis).enqueue(tasks.no_op, depends_on=Queue("x", connection=redis).enqueue(tasks.no_op))
    # started: one live entry, one whose expiry passed (its worker died)
    redis.zadd("rq:wip:work", {"live:1": time.time() + 600, "dead:1": time.time() - 5})
    # a worker that died: its key outlived its heartbeat
    redis.hset("rq:worker:ghost", mapping={"state": "busy", "last_heartbeat": _rq_time(now - timedelta(hours=1))})
    redis.sadd("rq:workers:work", "rq:worker:ghost", "rq:worker:gone")

    [sample_queue] = [q for q in take_sample(reader, ["work"]).queues]
    assert sample_queue.depth == 3
    assert sample_queue.missing == 1
    assert 99 <= sample_queue.latency <= 110  # the oldest of the head jobs, not index 0
    assert (sample_queue.failed, sample_queue.scheduled, sample_queue.overdue) == (1, 2, 1)
    assert (sample_queue.started, sample_queue.abandoned) == (2, 1)
    assert sample_queue.workers == 0
    other = {q.name: q for q in take_sample(reader).queues}
    assert set(other) == {"work", "other", "x"}
    assert other["other"].deferred == 1

    # live workers: one idle, then busy
    worker = start_worker(redis_server.url, tmp_path / "t.log", "work", "--name", "live-one")
    try:
        _wait(lambda: take_sample(reader, ["work"]).queues[0].workers == 1)
        _wait(lambda: take_sample(reader, ["work"]).queues[0].depth == 0)
        work.enqueue(tasks.sleep_for, 10)
        _wait(lambda: take_sample(reader, ["work"]).queues[0].busy == 1)
        busy = take_sample(reader, ["work"]).queues[0]
        assert (busy.workers, busy.busy, busy.idle) == (1, 1, 0)
    finally:
        os.killpg(worker.pid, signal.SIGKILL)
        stop_process(worker)


@pytest.mark.redis
def test_a_sample_is_three_round_trips_and_a_fixed_number_of_commands_per_queue(redis: Redis, reader: Redis) -> None:
    client = counting_client(reader)
    for queues, length in ((1, 1), (40, 1), (40, 2000)):
        redis.flushall()
        with redis.pipeline() as pipe:
            for number in range(queues):
                pipe.sadd("rq:queues", f"rq:queue:q{number}")
                pipe.rpush(f"rq:queue:q{number}", *[f"id{i}" for i in range(length)])
            pipe.execute()
        CountingConnection.reset()
        sample = take_sample(client)
        assert len(sample.queues) == queues and sample.queues[0].depth == length
        assert CountingConnection.round_trips == 3
        head = min(length, 10)
        assert CountingConnection.commands == 3 + queues * (COMMANDS_PER_QUEUE + head)


def _flags(redis: Redis, command: str) -> list[str]:
    """COMMAND INFO's flags of ``command`` (``write``, ``readonly``, …)."""
    return redis.execute_command("COMMAND", "INFO", command)[command]["flags"]


@pytest.mark.redis
@pytest.mark.jvm
def test_a_sample_writes_nothing(redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    grant_monitor(redis)
    queue = Queue("default", connection=redis)
    for _ in range(5):
        queue.enqueue(tasks.no_op)
    queue.enqueue_at(datetime.now(UTC) - timedelta(hours=1), tasks.no_op)
    redis.zadd("rq:wip:default", {"dead:1": 1})
    redis.hset("rq:worker:w", mapping={"state": "idle", "last_heartbeat": _rq_time(datetime.now(UTC))})
    redis.sadd("rq:workers:default", "rq:worker:w")
    before = redis.info("commandstats")
    watcher = redis_server.connection().monitor()
    watcher.__enter__()
    try:
        done = run_monitor(monitor_url(redis_server.url), tmp_path / "m.log", "--once", "--name", "probe")
        redis.echo("end-of-sample")
        seen = []
        while True:
            command = watcher.next_command()["command"]
            if command == "ECHO end-of-sample":
                break
            seen.append(command.split())
    finally:
        watcher.__exit__()
    assert done.returncode == 0, done.stderr
    assert len(read_events(tmp_path / "m.log")) == 2
    # redis-py's connection handshake (HELLO with the credentials, CLIENT SETINFO) is not part of a sample.
    seen = [words for words in seen if words[0].upper() not in ("HELLO", "CLIENT")]
    names = {words[0].upper() for words in seen}
    assert names <= {"INFO", "EXISTS", "SMEMBERS", "LLEN", "LRANGE", "ZCARD", "ZCOUNT", "HMGET"}, names
    assert {"INFO", "LRANGE", "HMGET", "ZCOUNT"} <= names
    for words in seen:
        name = words[0].lower()
        assert "write" not in _flags(redis, name), words
        if name == "lrange":
            assert words[2:] != ["0", "-1"], "a whole list is never read"
    after = redis.info("commandstats")
    grown = {key for key in after if after[key]["calls"] != before.get(key, {}).get("calls")}
    written = {key for key in grown if key not in ("cmdstat_info", "cmdstat_echo", "cmdstat_monitor")}
    writes = {key for key in written if "write" in _flags(redis, key.removeprefix("cmdstat_"))}
    assert not writes, writes


@pytest.mark.unit
def test_the_acl_in_the_docs_is_the_one_the_monitor_is_tested_with() -> None:
    page = (Path(__file__).resolve().parents[1] / "docs" / "queue-health.md").read_text()
    assert acl.acl_line("PASSWORD") in page
