"""Issue 16: one bad key, an unknown queue, an unwritable log and names made to forge output lines,
on a real redis-server, read as the monitor's read-only ACL user.

The bad state is written by the admin connection with raw commands; the monitor only reads.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from harness.monitor import CountingConnection, counting_client
from pipeline.lines.fields import decode_name
from pipeline.monitor.judge import Thresholds, judge
from pipeline.monitor.rq_keys import COMMANDS_PER_QUEUE
from pipeline.monitor.sample import take_sample
from tests import tasks
from tests.support.monitor import read_events, run_monitor

pytestmark = [pytest.mark.redis, pytest.mark.jvm]


@pytest.fixture
def url(monitor_user_url: str) -> str:
    return monitor_user_url


@pytest.fixture
def reader(url: str) -> Redis:
    return Redis.from_url(url)


def _check(url: str, *args: str) -> tuple[int, list[str]]:
    done = run_monitor(
        url, Path("/nonexistent/never-written.log"), "--check", "--check-window", "0", "--name", "nagios", *args
    )
    assert done.stderr == "", done.stderr
    return done.returncode, done.stdout.splitlines()


def _once(url: str, log: Path, *args: str) -> dict[str, dict]:
    """``--once``: the queue lines by decoded queue name; asserts the Redis line is there."""
    done = run_monitor(url, log, "--once", "--name", "mon", *args)
    assert done.returncode == 0, done.stderr
    events = read_events(log)
    assert [event for event in events if "used_memory" in event], events  # the memory line survived
    return {decode_name(event["queue"]): event for event in events if "queue" in event}


def _healthy(redis: Redis, queue: str) -> str:
    """A queue with one waiting job and one live idle worker, as RQ writes them: ok. Returns the job id."""
    job = Queue(queue, connection=redis).enqueue(tasks.no_op)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    redis.hset(f"rq:worker:w-{queue}", mapping={"state": "idle", "last_heartbeat": stamp, "queues": queue})
    redis.sadd(f"rq:workers:{queue}", f"rq:worker:w-{queue}")
    return job.id


def test_a_queue_list_of_the_wrong_type_marks_only_its_queue(redis: Redis, url: str, tmp_path: Path) -> None:
    _healthy(redis, "good")
    redis.set("rq:queue:x", "s")
    redis.sadd("rq:queues", "rq:queue:x")
    queues = _once(url, tmp_path / "m.log")
    assert set(queues) == {"good", "x"}
    assert (queues["good"]["status"], queues["good"]["depth"], queues["good"]["workers"]) == ("ok", 1, 1)
    assert queues["x"]["status"] == "warn"
    assert queues["x"]["reason"] == "rq:queue:x is a string, not a list"
    assert b"Queue: x Depth: 0 Latency: - " in (tmp_path / "m.log").read_bytes()  # unknown, not 0
    assert _check(url) == (1, ["WARN nagios: queue x: rq:queue:x is a string, not a list"])


BAD_KEYS = [
    ("rq:wip:x", "a sorted set"),
    ("rq:failed:x", "a sorted set"),
    ("rq:deferred:x", "a sorted set"),
    ("rq:scheduled:x", "a sorted set"),
    ("rq:workers:x", "a set"),
    ("rq:job:{job}", "a hash"),
    ("rq:worker:w-x", "a hash"),
]


@pytest.mark.parametrize(("key", "kind"), BAD_KEYS, ids=[key for key, _ in BAD_KEYS])
def test_any_key_of_the_wrong_type_marks_only_the_queue_it_belongs_to(
    redis: Redis, reader: Redis, key: str, kind: str
) -> None:
    _healthy(redis, "good")
    key = key.format(job=_healthy(redis, "x"))
    redis.delete(key)
    redis.rpush(key, "not", "what", "rq", "wrote")
    client = counting_client(reader)
    sample = take_sample(client)
    assert CountingConnection.round_trips == 4  # the fourth only because a key is of the wrong type: its TYPE
    queues = {queue.name: queue for queue in sample.queues}
    assert queues["x"].faults == (f"{key} is a list, not {kind}",)
    good = queues["good"]
    assert (good.depth, good.workers, good.faults, good.missing) == (1, 1, (), 0)
    assert sample.redis.used_memory > 0
    judgement = judge(sample, None, Thresholds())
    assert judgement.queues["good"].status == "ok"
    assert judgement.queues["x"].status in ("warn", "critical")
    assert ("warn", f"{key} is a list, not {kind}") in judgement.queues["x"].problems


def test_a_wrong_type_registry_is_a_warn_line_with_its_reason_from_check(redis: Redis, url: str) -> None:
    _healthy(redis, "good")
    _healthy(redis, "x")
    redis.set("rq:wip:x", "s")
    assert _check(url) == (1, ["WARN nagios: queue x: rq:wip:x is a string, not a sorted set"])


def test_a_worker_set_listing_something_else_than_worker_keys_is_a_fault_not_a_blind_sample(
    redis: Redis, url: str
) -> None:
    _healthy(redis, "good")
    _healthy(redis, "x")
    redis.sadd("rq:workers:x", "not-rq:anything")  # outside rq:*: the ACL user may not read it
    assert _check(url) == (1, ["WARN nagios: queue x: rq:workers:x lists not-rq:anything, not a worker key"])


def test_a_queue_name_that_is_not_utf8_is_read_escaped_and_warned(redis: Redis, url: str, tmp_path: Path) -> None:
    _healthy(redis, "good")
    raw = b"bad\xffname"
    redis.sadd("rq:queues", b"rq:queue:" + raw)
    redis.rpush(b"rq:queue:" + raw, b"id-without-hash")
    redis.zadd(b"rq:failed:" + raw, {b"f1": 1, b"f2": 2})
    queues = _once(url, tmp_path / "m.log")
    # the byte survives as an escape: 0xFF read as U+DCFF (surrogateescape), encoded, decoded back
    assert b"Queue: bad%ED%B3%BFname " in (tmp_path / "m.log").read_bytes()
    assert set(queues) == {"good", "bad\udcffname"}
    assert raw.decode("utf-8", "surrogateescape") == "bad\udcffname"
    bad = queues["bad\udcffname"]
    assert (bad["depth"], bad["missing"], bad["failed"]) == (1, 1, 2)  # its keys were read, as bytes
    assert bad["status"] == "critical" and "queue name is not UTF-8" in bad["reason"]
    assert queues["good"]["status"] == "ok"
    code, lines = _check(url)
    assert code == 2
    assert lines == [
        "CRITICAL nagios: queue bad\\udcffname: 1 jobs waiting and no live worker",
        "WARN nagios: queue bad\\udcffname: queue name is not UTF-8",
    ]


def test_an_unknown_queue_named_with_queues_warns_for_ever(redis: Redis, url: str, tmp_path: Path) -> None:
    _healthy(redis, "default")
    assert _check(url, "--queues", "defualt") == (1, ["WARN nagios: queue defualt: unknown queue"])
    code, lines = _check(url, "--queues", "default")
    assert code == 0 and lines[0].startswith("OK nagios: 1 queues"), lines
    queues = _once(url, tmp_path / "m.log", "--queues", "default,defualt")
    assert (queues["default"]["status"], queues["default"]["reason"]) == ("ok", "-")
    assert (queues["defualt"]["status"], queues["defualt"]["reason"]) == ("warn", "unknown queue")


def test_named_queues_cost_the_same_commands_as_all_queues(redis: Redis, reader: Redis) -> None:
    """SMEMBERS rq:queues is in the first round trip either way: the count is 3 + per queue, 3 round trips."""
    for number in range(3):
        _healthy(redis, f"q{number}")
    client = counting_client(reader)
    for queues in (None, ["q0", "q1", "q2"]):
        CountingConnection.reset()
        take_sample(client, queues)
        assert CountingConnection.round_trips == 3
        # per queue: its commands, one job hash and one worker hash
        assert CountingConnection.commands == 3 + 3 * (COMMANDS_PER_QUEUE + 1 + 1)


def test_once_exits_1_when_its_lines_cannot_be_written(redis: Redis, url: str) -> None:
    _healthy(redis, "default")
    done = run_monitor(url, Path("/dev/full"), "--once", "--name", "mon")
    assert done.returncode == 1, (done.returncode, done.stderr)
    [line] = done.stderr.splitlines()
    assert "/dev/full" in line and "No space left on device" in line


def test_names_cannot_forge_check_output_lines(redis: Redis, url: str, tmp_path: Path) -> None:
    evil = "evil\nOK all good"
    Queue(evil, connection=redis).enqueue(tasks.no_op)
    redis.set(f"rq:wip:{evil}", "s")
    Queue("\x1b[2Jred", connection=redis).enqueue(tasks.no_op)
    code, lines = _check(url)
    assert code == 2
    assert lines == [
        "CRITICAL nagios: queue \\x1b[2Jred: 1 jobs waiting and no live worker",
        "CRITICAL nagios: queue evil\\nOK all good: 1 jobs waiting and no live worker",
        "WARN nagios: queue evil\\nOK all good: rq:wip:evil\\nOK all good is a string, not a sorted set",
    ]
    queues = _once(url, tmp_path / "m.log")
    assert set(queues) == {evil, "\x1b[2Jred"}  # the log keeps the names exactly (percent-encoded)
    assert (
        queues[evil]["reason"]
        == "1 jobs waiting and no live worker; rq:wip:evil\\nOK all good is a string, not a sorted set"
    )


def test_times_that_are_not_utf8_are_unreadable_times_not_a_crash(redis: Redis, url: str, tmp_path: Path) -> None:
    _healthy(redis, "good")
    job = _healthy(redis, "x")
    redis.hset(f"rq:job:{job}", "enqueued_at", b"\xff\xfe")
    redis.hset("rq:worker:w-x", "last_heartbeat", b"\xff")  # unreadable: the worker counts as dead
    queues = _once(url, tmp_path / "m.log")
    assert (queues["good"]["status"], queues["good"]["workers"]) == ("ok", 1)
    assert (queues["x"]["depth"], queues["x"]["workers"], queues["x"]["status"]) == (1, 0, "critical")
    assert _check(url) == (2, ["CRITICAL nagios: queue x: 1 jobs waiting and no live worker"])


def test_rq_queues_of_the_wrong_type_is_a_reason_on_the_redis_line(redis: Redis, url: str, tmp_path: Path) -> None:
    _healthy(redis, "default")
    redis.delete("rq:queues")
    redis.set("rq:queues", "s")
    assert _check(url) == (1, ["WARN nagios: redis: rq:queues is a string, not a set"])
    code, lines = _check(url, "--queues", "default")  # the named queue is still sampled; known or not, unknown
    assert (code, lines) == (1, ["WARN nagios: redis: rq:queues is a string, not a set"])
    done = run_monitor(url, tmp_path / "m.log", "--once", "--queues", "default")
    assert done.returncode == 0, done.stderr
    redis_line, queue_line = read_events(tmp_path / "m.log")
    assert (redis_line["status"], redis_line["reason"]) == ("warn", "rq:queues is a string, not a set")
    assert (queue_line["queue"], queue_line["status"], queue_line["depth"]) == ("default", "ok", 1)
