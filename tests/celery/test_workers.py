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
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from harness.rabbitmq import RabbitMQNode
from pipeline import settings
from tests import celery_tasks as tasks
from tests.support import golden, logstash
from tests.support.celery_workers import (
    by_job,
    start_celery_worker,
    stop_celery_worker,
    unstamped,
    wait_for_file,
    wait_for_lines,
)
from tests.support.lines import parse
from tests.support.workers import REPO

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.jvm]

HEADER = settings.CELERY_PUBLISHED_HEADER


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


def terminate_once_running(task_id: str, marker: Path) -> None:
    """``revoke(terminate=True)`` a ``sleep_marked`` task half a second after it marked itself running."""
    wait_for_file(marker)
    time.sleep(0.5)
    tasks.app.control.revoke(task_id, terminate=True)


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
        terminate_once_running(send("terminated", tasks.sleep_marked, str(marker), 30), marker)
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


def test_a_gevent_task_revoked_with_terminate_is_killed_once(broker: str, tmp_path: Path) -> None:
    # gevent kills the task's greenlet after Celery's revoked signal; prefork's main process
    # learns of it from that signal alone (the test above).
    log = tmp_path / "task-time.log"
    marker = tmp_path / "running"
    worker = start_celery_worker(broker, log, pool="gevent", concurrency=2)
    try:
        finished = tasks.add.delay(1, 2).id
        wait_for_lines(log, 1)
        before = time.time()
        terminated = tasks.sleep_marked.delay(str(marker), 30).id
        terminate_once_running(terminated, marker)
        lines = wait_for_lines(log, 2, settle=2)
    finally:
        stop_celery_worker(worker)
    jobs = by_job(lines)
    assert len(lines) == 2, (lines, log.with_suffix(".worker.out").read_text(errors="replace")[-3000:])
    assert [line["status"] for line in jobs[finished]] == ["finished"]
    [killed] = jobs[terminated]
    assert killed["status"] == "killed" and 0.5 <= killed["task_time"] < time.time() - before
    assert str(killed["worker"]).endswith(f".{worker.pid}")  # no child: the worker's own process


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
