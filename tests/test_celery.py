"""Celery: one line per task execution, from real ``celery worker`` processes on a real Redis and RabbitMQ.

Every status on both brokers (prefork), the wait time against the publish stamp, the
stamp itself as the broker holds it, and every line read by Logstash's grok (Joni, in
the JVM helper) and by the report exactly as written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.rabbitmq import RabbitMQNode
from pipeline import settings
from tests import celery_tasks as tasks
from tests.support import golden, logstash
from tests.support.celery_workers import (
    start_celery_worker,
    stop_celery_worker,
    unstamped,
    use_broker,
    wait_for_file,
    wait_for_lines,
)
from tests.support.lines import parse
from tests.support.redis_server import RedisServer, free_port
from tests.support.workers import REPO

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.jvm]

HEADER = settings.CELERY_PUBLISHED_HEADER


@pytest.fixture(scope="module")
def rabbitmq() -> Iterator[RabbitMQNode]:
    node = RabbitMQNode()
    yield node
    node.stop()


@pytest.fixture(params=["redis", "rabbitmq"])
def broker(request: pytest.FixtureRequest, redis_server: RedisServer) -> str:
    """The broker URL, emptied: the test Redis or the test RabbitMQ node."""
    if request.param == "redis":
        redis_server.connection().flushall()
        url = redis_server.url
    else:
        node: RabbitMQNode = request.getfixturevalue("rabbitmq")
        node.purge()
        url = node.url
    use_broker(tasks.app, url)
    return url


def by_job(lines: list[str]) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for line in lines:
        fields = parse(line)
        found.setdefault(str(fields["job"]), []).append(fields)
    return found


def published(line: dict) -> float:
    """The publish time a line implies: its end, less its task time, less its wait."""
    return line["time"].timestamp() - line["task_time"] - line["wait_time"]


def read_by_logstash_and_report(lines: list[str], log: Path) -> None:
    """Logstash's grok and date (Joni, Joda) and the report parse every line, as written."""
    events = logstash.Pipeline(environ={}).run_many(lines, received=golden.RECEIVED)
    for text, event in zip(lines, events, strict=True):
        assert "tags" not in event, (text, event)
        assert event["system"] == "celery"
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.report", "--format", "json", str(log)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert (document["parsed"], document["unparsed"]) == (len(lines), 0)


def test_every_status_is_one_line_with_the_facts_of_its_execution(broker: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    marker = tmp_path / "running"
    sent: dict[str, tuple[str, float, float]] = {}

    def send(label: str, task, *args, **options) -> str:  # type: ignore[no-untyped-def]
        before = time.time()
        result = task.apply_async(args, **options)
        sent[label] = (result.id, before, time.time())
        return result.id

    send("finished", tasks.add, 2, 3)
    send("failed", tasks.fail, "boom")
    send("retry", tasks.retry_once)
    send("autoretry", tasks.auto_retry)
    send("timeout", tasks.sleep_for, 30, time_limit=1)
    send("soft", tasks.sleep_for, 30, soft_time_limit=1)
    send("killed", tasks.kill_own_child)
    send("eta", tasks.add, 1, 1, countdown=2)
    send("expired", tasks.add, 1, 2, expires=datetime.now(UTC) - timedelta(seconds=5))
    with unstamped():
        send("unstamped", tasks.add, 3, 4)
    worker = start_celery_worker(broker, log, "-n", "w1@%h", concurrency=3)
    try:
        wait_for_lines(log, 10)
        terminated = send("terminated", tasks.sleep_marked, str(marker), 30)
        wait_for_file(marker)
        time.sleep(0.5)
        tasks.app.control.revoke(terminated, terminate=True)
        # 12 lines: 10 executions, plus one retry each for the two retried tasks; nothing for the expired one.
        lines = wait_for_lines(log, 12, settle=3)
    finally:
        stop_celery_worker(worker)
    output = log.with_suffix(".worker.out").read_text(errors="replace")
    jobs = by_job(lines)
    assert len(lines) == 12, (lines, output[-3000:])
    statuses = {label: [line["status"] for line in jobs.get(job_id, [])] for label, (job_id, _, _) in sent.items()}
    assert statuses == {
        "finished": ["finished"],
        "failed": ["failed"],
        "retry": ["retry", "finished"],
        "autoretry": ["retry", "finished"],
        "timeout": ["timeout"],  # once, though Celery 5.7 sends task_failure twice for it
        "soft": ["timeout"],
        "killed": ["killed"],
        "eta": ["finished"],
        "expired": [],  # expired before it started: nothing ran
        "unstamped": ["finished"],
        "terminated": ["killed"],
    }, output[-3000:]
    for line in lines:
        fields = parse(line)
        assert fields["system"] == "celery" and fields["queue"] == "celery"
        assert str(fields["worker"]).startswith("w1@")
        assert str(fields["worker"]).rsplit(".", 1)[1].isdigit()  # the child's pid
    names = {label: jobs[job_id][0]["task"] for label, (job_id, _, _) in sent.items() if jobs.get(job_id)}
    assert names["finished"] == "tests.add" and names["killed"] == "tests.kill_own_child"
    # Task time: the monotonic clock in the child; from the accepted time for timeout and killed.
    assert 1.0 <= jobs[sent["timeout"][0]][0]["task_time"] < 3.0
    assert 1.0 <= jobs[sent["soft"][0]][0]["task_time"] < 3.0
    assert 0.5 <= jobs[sent["terminated"][0]][0]["task_time"] < 5.0
    assert jobs[sent["finished"][0]][0]["task_time"] < 0.5
    # Wait time: from the stamp, as the line implies it, within the send; a retry from its republish.
    for label in ("finished", "failed", "timeout", "soft", "killed", "terminated"):
        job_id, before, after = sent[label]
        line = jobs[job_id][0]
        assert before - 0.002 <= published(line) <= after + 0.002, (label, line)
    first, second = jobs[sent["retry"][0]]
    assert published(second) >= published(first) + first["task_time"] - 0.002
    # ETA: the wait runs from the later of publish and ETA, so it is short, not the 2 s countdown.
    eta_job, before, after = sent["eta"]
    [eta_line] = jobs[eta_job]
    assert before + 2 - 0.002 <= published(eta_line) <= after + 2 + 0.002
    assert "wait_time" not in jobs[sent["unstamped"][0]][0]
    read_by_logstash_and_report(lines, log)


def test_the_stamp_is_on_the_message_in_the_broker(broker: str, rabbitmq: RabbitMQNode) -> None:
    """The header (float seconds) on both brokers; on RabbitMQ the AMQP timestamp, as the management API shows it."""
    before = time.time()
    tasks.add.apply_async((1, 2), queue="held")
    after = time.time()
    if broker.startswith("redis"):
        from redis import Redis

        [raw] = Redis.from_url(broker).lrange("held", 0, -1)
        message = json.loads(raw)
        assert before <= message["headers"][HEADER] <= after
        return
    request = urllib.request.Request(f"{rabbitmq.management_url}/api/queues/%2F/held")
    request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")  # guest:guest, loopback only
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen(request, timeout=10) as response:
            queue = json.loads(response.read())
        if queue.get("head_message_timestamp") is not None or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert int(before) <= queue["head_message_timestamp"] <= int(after)
    with tasks.app.connection_for_read() as connection:
        message = connection.default_channel.basic_get("held")
        assert before <= message.headers[HEADER] <= after
        assert message.properties["timestamp"] == queue["head_message_timestamp"]


@pytest.mark.parametrize("pool", ["solo", "threads", "gevent"])
def test_solo_threads_and_gevent_pools_write_one_line_per_execution(pool: str, broker: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    ids = {
        "finished": tasks.add.delay(1, 2).id,
        "failed": tasks.fail.delay("x").id,
        "retry": tasks.retry_once.delay().id,
        "sleep": tasks.sleep_for.delay(0.3).id,
    }
    expected = 5
    if pool == "gevent":  # the only one of the three with time limits: raised in the worker's own process
        ids["timeout"] = tasks.sleep_for.apply_async((30,), time_limit=1).id
        expected += 1
    worker = start_celery_worker(broker, log, pool=pool, concurrency=2)
    try:
        lines = wait_for_lines(log, expected, settle=2)
    finally:
        stop_celery_worker(worker)
    jobs = by_job(lines)
    assert len(lines) == expected, (lines, log.with_suffix(".worker.out").read_text(errors="replace")[-3000:])
    assert [line["status"] for line in jobs[ids["retry"]]] == ["retry", "finished"]
    assert [line["status"] for line in jobs[ids["failed"]]] == ["failed"]
    assert 0.3 <= jobs[ids["sleep"]][0]["task_time"] < 1.0
    if pool == "gevent":
        [timeout] = jobs[ids["timeout"]]
        assert timeout["status"] == "timeout" and 1.0 <= timeout["task_time"] < 3.0
    workers = [str(parse(line)["worker"]) for line in lines]
    assert all(name.endswith(f".{worker.pid}") for name in workers), workers  # no child: the worker
    assert all("wait_time" in parse(line) for line in lines)


def test_a_log_that_cannot_be_written_is_one_line_and_the_tasks_still_run(broker: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    log = blocker / "task-time.log"  # its folder is a file: it cannot be created
    marker = tmp_path / "ran"
    output = tmp_path / "worker.out"
    for _ in range(3):
        tasks.sleep_marked.delay(str(marker), 0)
    worker = start_celery_worker(broker, log, concurrency=2, output=output)
    try:
        wait_for_file(marker)
        time.sleep(2)
    finally:
        stop_celery_worker(worker)
    said = [line for line in output.read_text(errors="replace").splitlines() if "task-time" in line]
    assert len(said) == 1, said
    assert "Traceback" not in output.read_text(errors="replace")
    assert not log.exists()


def test_recycled_children_under_load_lose_and_duplicate_no_line(broker: str, tmp_path: Path) -> None:
    """1,000 tasks on four children replaced every 25 tasks: exactly one line per task."""
    log = tmp_path / "task-time.log"
    with tasks.app.producer_or_acquire() as producer:
        ids = [tasks.no_op.apply_async(producer=producer).id for _ in range(1000)]
    worker = start_celery_worker(broker, log, "--max-tasks-per-child", "25", concurrency=4)
    try:
        lines = wait_for_lines(log, 1000, timeout=300, settle=2)
    finally:
        stop_celery_worker(worker)
    jobs = by_job(lines)
    assert len(lines) == 1000 and sorted(jobs) == sorted(ids)
    assert {line["status"] for found in jobs.values() for line in found} == {"finished"}
    assert len({str(found[0]["worker"]) for found in jobs.values()}) > 4  # children were replaced


def test_a_broker_down_at_worker_start_is_waited_for_and_the_tasks_then_run(tmp_path: Path) -> None:
    """The worker starts before its Redis; once Redis is up, a task published then runs and has its line."""
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    log = tmp_path / "task-time.log"
    worker = start_celery_worker(url, log, pool="solo", concurrency=1)
    server = None
    try:
        time.sleep(3)
        assert worker.poll() is None
        server = subprocess.Popen(
            ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(tmp_path)],
            stdout=subprocess.DEVNULL,
        )
        use_broker(tasks.app, url)
        deadline = time.monotonic() + 30
        while True:
            try:
                job = tasks.add.delay(1, 1).id
                break
            except Exception:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        lines = wait_for_lines(log, 1, timeout=60)
    finally:
        stop_celery_worker(worker)
        if server is not None:
            server.terminate()
            server.wait(10)
    output = log.with_suffix(".worker.out").read_text(errors="replace")
    assert [parse(line)["job"] for line in lines] == [job], output[-2000:]
    assert "Cannot connect to redis" in output and "Traceback" not in output


def test_the_compose_celery_demo_runs_its_producer_and_worker(redis_server: RedisServer, tmp_path: Path) -> None:
    """worker/celery_jobs.py as the compose profile runs it: the producer publishes, the worker writes lines."""
    redis_server.connection().flushall()
    log = tmp_path / "task-time.log"
    demo = REPO / "worker"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CELERY_BROKER_URL": redis_server.url, "TASK_TIME_LOG": str(log)}
    env["DEMO_MAX_SECONDS"] = "0.2"
    done = subprocess.run(
        [sys.executable, "celery_jobs.py", "--count", "12", "--rate", "200"],
        env=env,
        cwd=demo,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    out = (tmp_path / "demo.out").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "celery_jobs", "worker", "--concurrency", "2", "--without-mingle"],
        env=env,
        cwd=demo,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        lines = wait_for_lines(log, 12, timeout=90, settle=2)
    finally:
        stop_celery_worker(worker)
    assert len(lines) >= 12, (tmp_path / "demo.out").read_text(errors="replace")[-2000:]
    parsed = [parse(line) for line in lines]
    assert all(str(fields["task"]).startswith("celery_jobs.") for fields in parsed)
    assert {fields["queue"] for fields in parsed} == {"default"} and {fields["system"] for fields in parsed} == {
        "celery"
    }
    assert all("wait_time" in fields for fields in parsed)
