"""Celery on Redis: the monitor's sample of a real redis-server filled by a real Celery producer,
read as the read-only ACL user of ``pipeline.monitor.celery_acl``."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import NoPermissionError
from rq import Queue

from harness.monitor import CountingConnection, counting_client, grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.monitor import celery_acl
from pipeline.monitor.celery_judge import judge_celery
from pipeline.monitor.celery_redis import KombuLayout, take_celery_redis_sample
from pipeline.monitor.judge import Thresholds
from tests import tasks
from tests.support.celery_monitor import UNSTAMPED, make_app
from tests.support.celery_workers import unstamped
from tests.support.monitor import monitor_env, read_events, run_monitor

pytestmark = [pytest.mark.redis, pytest.mark.celery, pytest.mark.jvm]
PASSWORD = "celery-monitor-pass-1"
DEFAULT_LAYOUT = KombuLayout()


def grant(admin: Redis, layout: KombuLayout = DEFAULT_LAYOUT, queues: list[str] | None = None) -> None:
    admin.execute_command(
        "ACL", "SETUSER", celery_acl.USER, "reset", "on", f">{PASSWORD}", *celery_acl.rules(layout, queues)
    )


def reader_url(server: RedisServer) -> str:
    return server.url.replace("redis://", f"redis://{celery_acl.USER}:{PASSWORD}@", 1)


@pytest.fixture
def reader(redis: Redis, redis_server: RedisServer) -> Iterator[Redis]:
    grant(redis)
    connection = Redis.from_url(reader_url(redis_server))
    yield connection
    connection.close()


def test_depth_is_every_priority_list_and_latency_the_oldest_stamp(redis_url: str, reader: Redis) -> None:
    app = make_app(redis_url)
    add = app.tasks["tests.celery_app.add"]
    first = time.time()
    add.apply_async((1, 2), queue="work", priority=9)  # the oldest, in the lowest-priority list
    time.sleep(1.2)
    for priority in (0, 0, 4, 7):
        add.apply_async((1, 2), queue="work", priority=priority)
    add.apply_async((1, 2))  # Celery's default queue
    sample = take_celery_redis_sample(reader, KombuLayout())
    queues = {queue.name: queue for queue in sample.queues}
    assert set(queues) == {"celery", "work"}  # found in kombu's bindings; pidbox and events left out
    work = queues["work"]
    assert work.depth == 5 and (work.reserved, work.consumers) == (None, None)
    assert time.time() - first - 0.5 <= work.latency <= time.time() - first + 0.5
    assert queues["celery"].depth == 1 and queues["celery"].latency < 1.0
    assert sample.unacked == 0 and sample.redis.used_memory > 0


# kombu remembers the bindings it declared in the producer's process (virtual BrokerState) and
# does not declare them again after the fixture's FLUSHALL: each test uses queue names of its own.


def test_keyprefix_separator_and_priority_steps_are_honoured(
    redis: Redis, redis_url: str, redis_server: RedisServer
) -> None:
    transport = {"global_keyprefix": "app1:", "sep": ":", "priority_steps": list(range(10))}
    add = make_app(redis_url, **transport).tasks["tests.celery_app.add"]
    for priority in (0, 1, 5, 9):
        add.apply_async((1, 2), queue="pq", priority=priority)
    assert redis.exists("app1:pq:5") and redis.exists("app1:pq:1")
    layout = KombuLayout("app1:", ":", tuple(range(10)))
    grant(redis, layout, ["pq"])  # the narrow ACL: bindings, unacked and pq's lists only
    reader = Redis.from_url(reader_url(redis_server))
    [queue] = take_celery_redis_sample(reader, layout, ["pq"]).queues
    assert (queue.name, queue.depth) == ("pq", 4)
    assert take_celery_redis_sample(reader, layout).queues[0].depth == 4  # found in app1:_kombu.binding.pq
    with pytest.raises(NoPermissionError):
        reader.llen("pq")  # outside the prefix
    assert take_celery_redis_sample(Redis.from_url(redis_url), KombuLayout()).queues == []  # wrong prefix: none found


def test_a_message_without_a_stamp_leaves_the_latency_unknown_and_says_so(redis_url: str, reader: Redis) -> None:
    bare = make_app(redis_url).tasks[UNSTAMPED]
    with unstamped():  # a producer without pipeline.celery.install
        bare.apply_async(queue="bare")
    sample = take_celery_redis_sample(reader, KombuLayout(), ["bare"])
    [queue] = sample.queues
    assert (queue.depth, queue.latency) == (1, None)
    verdict = judge_celery(sample, None, Thresholds()).queues["bare"]
    assert verdict.status == "warn" and "no task_time_published_at header" in verdict.reason


def test_a_future_eta_is_not_waiting_and_a_past_one_counts_from_its_stamp(redis_url: str, reader: Redis) -> None:
    add = make_app(redis_url).tasks["tests.celery_app.add"]
    add.apply_async((1, 2), queue="later", countdown=600)
    add.apply_async((1, 2), queue="due", eta=datetime.now(UTC) - timedelta(hours=1))  # due an hour ago, published now
    queues = {q.name: q for q in take_celery_redis_sample(reader, KombuLayout(), ["later", "due"]).queues}
    assert queues["later"].depth == 1 and queues["later"].latency == 0.0
    assert queues["due"].depth == 1 and queues["due"].latency < 5


def test_messages_taken_and_not_acknowledged_are_counted_for_all_queues(redis_url: str, reader: Redis) -> None:
    app = make_app(redis_url)
    for _ in range(3):
        app.tasks["tests.celery_app.add"].apply_async((1, 2), queue="taken")
    from kombu import Connection

    with Connection(redis_url) as connection:
        queue = connection.SimpleQueue("taken")
        taken = [queue.get(timeout=5) for _ in range(2)]  # a worker's reservation: not acked
        sample = take_celery_redis_sample(reader, KombuLayout(), ["taken"])
        assert (sample.unacked, sample.queues[0].depth) == (2, 1)
        for message in taken:
            message.ack()
        queue.close()
    assert take_celery_redis_sample(reader, KombuLayout(), ["taken"]).unacked == 0


def test_the_acl_user_reads_but_cannot_write_or_list_keys(redis_url: str, reader: Redis) -> None:
    make_app(redis_url).tasks["tests.celery_app.add"].apply_async((1, 2), queue="aclq")
    assert reader.llen("aclq") == 1 and "used_memory" in reader.info()
    for forbidden in (lambda: reader.lpush("aclq", "x"), lambda: reader.rpop("aclq"), lambda: reader.keys("*")):
        with pytest.raises(NoPermissionError):
            forbidden()


def test_cost_per_queue_is_constant_whatever_its_length(redis: Redis, redis_url: str, reader: Redis) -> None:
    add = make_app(redis_url).tasks["tests.celery_app.add"]
    add.apply_async((1, 2), queue="short")
    add.apply_async((1, 2), queue="long")
    redis.rpush("long", *[redis.lindex("long", -1)] * 100_000)
    client = counting_client(reader)
    sample = take_celery_redis_sample(client, KombuLayout(), ["short", "long"])
    assert [q.depth for q in sample.queues] == [1, 100_001]
    # one round trip for INFO and HLEN, one for LLEN and LINDEX of 4 priority lists per queue
    assert (CountingConnection.round_trips, CountingConnection.commands) == (2, 2 + 2 * 4 * 2)


def run_celery_monitor(log: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m pipeline.monitor`` without ``--url`` (nor ``RQ_REDIS_URL``)."""
    command = [sys.executable, "-m", "pipeline.monitor", "--log", str(log), *args]
    return subprocess.run(command, env=monitor_env(), capture_output=True, text=True, timeout=60)


def test_celery_alone_or_beside_rq_through_the_command_line(
    redis: Redis, redis_url: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    make_app(redis_url).tasks["tests.celery_app.add"].apply_async((1, 2), queue="cliq")
    Queue("default", connection=redis).enqueue(tasks.no_op)
    grant(redis)
    grant_monitor(redis)
    celery = ["--once", "--celery-broker", reader_url(redis_server)]
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "both.log", *celery)  # --url as well: both
    assert done.returncode == 0, done.stderr
    events = read_events(tmp_path / "both.log")  # each line parsed by the queue-monitor pipeline
    assert [e.get("system", "rq") for e in events] == ["rq", "rq", "celery", "celery"]
    assert (events[1]["queue"], events[1]["depth"]) == ("default", 1)
    assert (events[3]["queue"], events[3]["depth"], events[3]["broker"]) == ("cliq", 1, "redis")
    assert events[2]["unacked"] == 0 and "suspended" not in events[2]
    done = run_celery_monitor(tmp_path / "alone.log", *celery)  # only Celery's broker: RQ is not sampled
    assert done.returncode == 0, done.stderr
    assert [e["system"] for e in read_events(tmp_path / "alone.log")] == ["celery", "celery"]


def test_memory_against_maxmemory_sets_the_check_exit_code(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant(redis)
    used = int(redis.info("memory")["used_memory"])
    redis.config_set("maxmemory", int(used / 0.85))
    try:
        check = ["--check", "--check-window", "0", "--celery-broker", reader_url(redis_server)]
        done = run_celery_monitor(tmp_path / "unused.log", *check)
        assert done.returncode == 1, (done.stdout, done.stderr)
        assert "WARN" in done.stdout and "celery redis: memory" in done.stdout
    finally:
        redis.config_set("maxmemory", 0)
