"""TimedJob and TimedWorker under real ``rq worker`` processes on a real redis-server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue
from rq.command import send_stop_job_command
from rq.job import Job, JobStatus
from rq.registry import FailedJobRegistry, FinishedJobRegistry

from tests import tasks
from tests.support.lines import parse
from tests.support.workers import (
    TIMED_JOB,
    TIMED_WORKER,
    read_lines,
    rq_command,
    run_burst_worker,
    start_worker,
    stop_process,
    wait_for_lines,
    worker_env,
)

pytestmark = [pytest.mark.redis]

# Sleeps are measured by the worker around the task; allow scheduling noise (the test
# Elasticsearch may share the two cores) but not more.
TOLERANCE = 0.5


def only_line(log: Path) -> dict[str, object]:
    lines = read_lines(log)
    assert len(lines) == 1, lines
    return parse(lines[0])


def test_successful_task_writes_every_field(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.sleep_for, 0.3)
    before = datetime.now(UTC)
    done = run_burst_worker(redis_url, log, name="w-success")
    after = datetime.now(UTC)
    assert done.returncode == 0, done.stderr

    line = only_line(log)
    assert line["task"] == "tests.tasks.sleep_for"
    assert 0.3 <= line["task_time"] < 0.3 + TOLERANCE
    assert line["queue"] == "default"
    assert line["status"] == "finished"
    assert line["job"] == job.id
    assert line["worker"] == "w-success"
    assert 0 <= line["wait_time"] < 30
    # Time is when the execution ended, in UTC, with millisecond precision.
    assert before - timedelta(milliseconds=1) <= line["time"] <= after
    assert job.get_status(refresh=True) == JobStatus.FINISHED
    assert job.return_value() == 0.3


def test_line_is_exactly_the_documented_shape(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.no_op)
    run_burst_worker(redis_url, log, name="shape")
    [line] = read_lines(log)
    head, rest = line.split(" Task: ", 1)
    assert head.startswith("Time: ") and len(head) == len("Time: 2026-11-21 23:48:57,244")
    labels = [word for word in rest.split(" ") if word.endswith(":")]
    assert labels == ["Task-time:", "Queue:", "Status:", "Wait-time:", "Job:", "Worker:"]
    assert f" Job: {job.id} Worker: shape" in line
    task_time = rest.split("Task-time: ")[1].split(" ")[0]
    assert "e" not in task_time and len(task_time.split(".")[1]) == 6


def test_failing_task_is_logged_and_still_fails(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.fail, "boom")
    run_burst_worker(redis_url, log)
    line = only_line(log)
    assert (line["task"], line["status"]) == ("tests.tasks.fail", "failed")
    assert line["task_time"] < TOLERANCE
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "TaskError: boom" in job.latest_result().exc_string
    assert job.id in FailedJobRegistry("default", connection=redis)


def test_job_timeout_is_logged_as_timeout(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.sleep_for, 10, job_timeout=1)
    run_burst_worker(redis_url, log)
    line = only_line(log)
    assert line["status"] == "timeout"
    assert 1.0 <= line["task_time"] < 1.0 + TOLERANCE
    assert job.get_status(refresh=True) == JobStatus.FAILED
    assert "JobTimeoutException" in job.latest_result().exc_string


def test_horse_killed_by_sigkill_gets_a_killed_line_from_its_worker(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.kill_own_horse, 0.5)
    done = run_burst_worker(redis_url, log, name="w-killed")
    assert done.returncode == 0, done.stderr
    line = only_line(log)
    assert (line["task"], line["status"], line["job"]) == ("tests.tasks.kill_own_horse", "killed", job.id)
    assert line["worker"] == "w-killed" and line["queue"] == "default"
    assert 0.5 <= line["task_time"] < 0.5 + 2.0  # from the fork, so it includes the horse's start-up
    assert line["wait_time"] >= 0
    assert job.get_status(refresh=True) == JobStatus.FAILED


def test_horse_killed_from_outside_and_stopped_horse_each_get_one_line(
    redis: Redis, redis_url: str, tmp_path: Path
) -> None:
    log = tmp_path / "task-time.log"
    queue = Queue("default", connection=redis)
    oom = queue.enqueue(tasks.sleep_and_report_pid, str(tmp_path / "oom.pid"), 30)
    stopped = queue.enqueue(tasks.sleep_and_report_pid, str(tmp_path / "stopped.pid"), 30)
    after = queue.enqueue(tasks.no_op)
    worker = start_worker(redis_url, log, "-w", TIMED_WORKER, "--job-class", TIMED_JOB, "--burst", "default")
    try:
        for victim, pid_file in ((oom, tmp_path / "oom.pid"), (stopped, tmp_path / "stopped.pid")):
            deadline = time.monotonic() + 30
            while not (pid_file.exists() and victim.get_status(refresh=True) == JobStatus.STARTED):
                assert time.monotonic() < deadline, "horse never started"
                time.sleep(0.05)
            time.sleep(0.3)
            if victim is oom:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)  # what the OOM killer does
            else:
                send_stop_job_command(redis, victim.id)
            wait_for_lines(log, 1 if victim is oom else 2)
        wait_for_lines(log, 3)
    finally:
        output = stop_process(worker)
    lines = [parse(line) for line in read_lines(log)]
    assert [(line["job"], line["status"]) for line in lines] == [
        (oom.id, "killed"),
        (stopped.id, "killed"),
        (after.id, "finished"),
    ], output
    assert all(line["task_time"] >= 0.3 for line in lines[:2])


def test_wait_time_covers_time_spent_behind_another_job(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    queue = Queue("default", connection=redis)
    queue.enqueue(tasks.sleep_for, 1.0)
    second = queue.enqueue(tasks.no_op)
    run_burst_worker(redis_url, log)
    first_line, second_line = (parse(line) for line in read_lines(log))
    assert second_line["job"] == second.id
    assert first_line["task_time"] >= 1.0
    assert 1.0 <= second_line["wait_time"] < 1.0 + 2.0
    # Measured on the same clock as the enqueue: it ends about when the first job ended.
    assert second_line["wait_time"] >= first_line["task_time"]


def _outcomes(redis: Redis, redis_url: str, log: Path, worker_class: str, job_class: str, queue_name: str):
    queue = Queue(queue_name, connection=redis)
    jobs = [
        queue.enqueue(tasks.add, 2, 3),
        queue.enqueue(tasks.fail, "same"),
        queue.enqueue(tasks.sleep_for, 5, job_timeout=1),
    ]
    done = run_burst_worker(redis_url, log, queues=[queue_name], worker_class=worker_class, job_class=job_class)
    assert done.returncode == 0, done.stderr
    finished = FinishedJobRegistry(queue_name, connection=redis)
    failed = FailedJobRegistry(queue_name, connection=redis)
    outcomes = []
    for job in jobs:
        job = Job.fetch(job.id, connection=redis)
        result = job.latest_result()
        outcomes.append(
            {
                "status": job.get_status(),
                "return_value": job.return_value(),
                "result_type": result.type,
                "exc_string": result.exc_string,
                "in_finished": job.id in finished,
                "in_failed": job.id in failed,
            }
        )
    return outcomes


def test_rq_sees_the_same_outcomes_as_with_the_plain_job(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    plain = _outcomes(redis, redis_url, tmp_path / "plain.log", "rq.worker.Worker", "rq.job.Job", "plain")
    timed = _outcomes(redis, redis_url, tmp_path / "timed.log", TIMED_WORKER, TIMED_JOB, "timed")
    assert len(read_lines(tmp_path / "timed.log")) == 3
    for plain_outcome, timed_outcome in zip(plain, timed, strict=True):
        plain_exc, timed_exc = plain_outcome.pop("exc_string"), timed_outcome.pop("exc_string")
        assert timed_outcome == plain_outcome
        if plain_exc is None:
            assert timed_exc is None
            continue
        # Any wrapper around perform() is one more frame in the traceback; that frame
        # (its File line naming pipeline/job.py and the source lines under it) is the
        # only difference allowed.
        timed_lines = timed_exc.splitlines()
        ours = [i for i, text in enumerate(timed_lines) if text.startswith("  File ") and "pipeline/job.py" in text]
        assert len(ours) == 1, timed_exc
        end = ours[0] + 1
        while timed_lines[end].startswith("    "):
            end += 1
        del timed_lines[ours[0] : end]
        assert timed_lines == plain_exc.splitlines()


def test_names_with_whitespace_newlines_and_unicode_stay_one_line(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    queue_name = "queue with spaces\nand a newline ünï"
    queue = Queue(queue_name, connection=redis)
    jobs = [queue.enqueue(f"tests.tasks.{name}") for name in tasks.NASTY_NAMES]
    jobs.append(queue.enqueue(tasks.envoyer_déjà_vu))
    jobs.append(queue.enqueue(tasks.no_op, job_id="-"))  # RQ allows only [A-Za-z0-9_-] in ids
    worker_name = "worker\nStatus: finished"
    done = run_burst_worker(redis_url, log, queues=[queue_name], name=worker_name)
    assert done.returncode == 0, done.stderr
    lines = read_lines(log)
    assert len(lines) == len(jobs)
    parsed = [parse(line) for line in lines]
    assert [line["task"] for line in parsed] == [
        *(f"tests.tasks.{name}" for name in tasks.NASTY_NAMES),
        "tests.tasks.envoyer_déjà_vu",
        "tests.tasks.no_op",
    ]
    assert {line["queue"] for line in parsed} == {queue_name}
    assert {line["worker"] for line in parsed} == {worker_name}
    assert {line["status"] for line in parsed} == {"finished"}
    assert [line["job"] for line in parsed] == [job.id for job in jobs]


@pytest.mark.parametrize("worker_class", ["rq.worker.SimpleWorker", "rq.worker.Worker"])
def test_job_class_alone_works_with_rq_workers(redis: Redis, redis_url: str, tmp_path: Path, worker_class: str) -> None:
    log = tmp_path / "task-time.log"
    queue = Queue("default", connection=redis)
    ok, bad = queue.enqueue(tasks.add, 1, 2), queue.enqueue(tasks.fail, "x")
    run_burst_worker(redis_url, log, worker_class=worker_class)
    assert [(line["job"], line["status"]) for line in map(parse, read_lines(log))] == [
        (ok.id, "finished"),
        (bad.id, "failed"),
    ]


def test_rq_job_class_environment_variable(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.no_op)
    env = worker_env(log, RQ_JOB_CLASS=TIMED_JOB, RQ_WORKER_CLASS=TIMED_WORKER)
    done = run_burst_worker(redis_url, log, worker_class=None, job_class=None, env=env)
    assert done.returncode == 0, done.stderr
    assert only_line(log)["job"] == job.id


def test_worker_pool_with_timed_classes(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    queue = Queue("default", connection=redis)
    jobs = [queue.enqueue(tasks.sleep_for, 0.2) for _ in range(4)] + [queue.enqueue(tasks.kill_own_horse, 0.1)]
    pool = start_worker(
        redis_url,
        log,
        "-n",
        "2",
        "-w",
        TIMED_WORKER,
        "--job-class",
        TIMED_JOB,
        "default",
        command="worker-pool",
    )
    try:
        wait_for_lines(log, len(jobs))
    finally:
        output = stop_process(pool)
    lines = [parse(line) for line in read_lines(log)]
    assert sorted(line["job"] for line in lines) == sorted(job.id for job in jobs), output
    assert sorted(line["status"] for line in lines) == ["finished"] * 4 + ["killed"]


def test_lines_continue_in_a_new_file_after_rotation(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    queue = Queue("default", connection=redis)
    worker = start_worker(redis_url, log, "-w", TIMED_WORKER, "--job-class", TIMED_JOB, "default")
    try:
        first = queue.enqueue(tasks.no_op)
        assert len(wait_for_lines(log, 1)) == 1
        log.rename(tmp_path / "task-time.log.1")  # what logrotate's default (create) mode does
        second = queue.enqueue(tasks.no_op)
        assert len(wait_for_lines(log, 1)) == 1
        log.unlink()  # deleted outright: the next line recreates it
        third = queue.enqueue(tasks.no_op)
        assert len(wait_for_lines(log, 1)) == 1
    finally:
        output = stop_process(worker)
    assert parse(read_lines(tmp_path / "task-time.log.1")[0])["job"] == first.id
    assert [parse(line)["job"] for line in read_lines(log)] == [third.id], output
    assert second.get_status(refresh=True) == JobStatus.FINISHED


def test_configured_time_zone(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    Queue("default", connection=redis).enqueue(tasks.no_op)
    before = datetime.now(UTC)
    run_burst_worker(redis_url, log, env=worker_env(log, TASK_TIME_TZ="Asia/Kolkata"))
    written = only_line(log)["time"]  # parsed as if UTC: it must be 5:30 ahead
    assert timedelta(hours=5, minutes=29) < written - before < timedelta(hours=5, minutes=31)


def test_launcher_runs_rq_worker_with_the_timed_classes(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    log = tmp_path / "task-time.log"
    job = Queue("default", connection=redis).enqueue(tasks.kill_own_horse, 0.1)
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--burst", "--url", redis_url, "-n", "launched", "default"],
        env=worker_env(log),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    line = only_line(log)  # killed: only TimedWorker writes that line, so both classes were used
    assert (line["job"], line["status"], line["worker"]) == (job.id, "killed", "launched")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--job-class", "pipeline.job.NoSuchJob"], "cannot import job class 'pipeline.job.NoSuchJob'"),
        (["-w", "nosuch.module.Worker"], "cannot import worker class 'nosuch.module.Worker'"),
        (["-wnosuch.module.Worker"], "cannot import worker class 'nosuch.module.Worker'"),
        (["--job-class=tests.tasks.add"], "'tests.tasks.add' is not an RQ job class"),
    ],
)
def test_launcher_rejects_unknown_class_paths_in_one_line(redis_url: str, args: list[str], message: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--burst", "--url", redis_url, *args, "default"],
        env=worker_env(Path("unused.log")),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    [error] = done.stderr.strip().splitlines()
    assert error.startswith(f"rq-task-time-worker: {message}"), error


@pytest.mark.parametrize(
    ("env", "job_class", "message"),
    [
        ({"TASK_TIME_LOG": "/proc/rq-task-time/task-time.log"}, TIMED_JOB, "cannot open the task-time log"),
        ({"TASK_TIME_TZ": "Mars/Olympus_Mons"}, TIMED_JOB, "not a known IANA time zone"),
        ({}, "rq.job.Job", "TimedWorker needs a TimedJob job class"),
    ],
)
def test_timed_worker_refuses_to_start_misconfigured(
    redis_url: str, tmp_path: Path, env: dict[str, str], job_class: str, message: str
) -> None:
    done = run_burst_worker(
        redis_url, tmp_path / "x.log", job_class=job_class, env=worker_env(tmp_path / "x.log", **env)
    )
    assert done.returncode == 1
    error_lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(error_lines) == 1 and error_lines[0].startswith("rq-task-time: "), done.stderr
    assert message in error_lines[0]


@pytest.mark.parametrize(("worker_class", "reports"), [("rq.worker.SimpleWorker", 1), ("rq.worker.Worker", 3)])
def test_unwritable_log_with_job_class_alone_is_reported_and_jobs_still_run(
    redis: Redis, redis_url: str, tmp_path: Path, worker_class: str, reports: int
) -> None:
    """Once per process: a SimpleWorker says it once, a forking Worker once per job (each
    horse is a new process), which is why TimedWorker checks the log before it starts."""
    queue = Queue("default", connection=redis)
    jobs = [queue.enqueue(tasks.add, 1, 1) for _ in range(3)]
    env = worker_env(tmp_path / "x.log", TASK_TIME_LOG="/proc/rq-task-time/task-time.log")
    done = run_burst_worker(redis_url, tmp_path / "x.log", worker_class=worker_class, env=env)
    assert done.returncode == 0
    assert done.stderr.count("pipeline.task_time: cannot open the task-time log") == reports, done.stderr
    assert all(job.return_value() == 2 for job in jobs)


def test_listing_timed_workers_has_no_side_effects(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    """RQ builds worker objects to list them (rq info); that must neither fail nor touch the log."""
    log = tmp_path / "never-opened" / "task-time.log"
    worker = start_worker(
        redis_url, tmp_path / "task-time.log", "-w", TIMED_WORKER, "--job-class", TIMED_JOB, "-n", "listed", "default"
    )
    try:
        deadline = time.monotonic() + 30
        while not redis.exists("rq:worker:listed"):
            assert time.monotonic() < deadline, "worker never registered"
            time.sleep(0.1)
        env = worker_env(log, RQ_WORKER_CLASS=TIMED_WORKER)
        done = subprocess.run(
            rq_command(redis_url, "-W", "--raw", command="info"), env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        stop_process(worker)
    assert done.returncode == 0, done.stderr
    assert "worker listed" in done.stdout
    assert not log.parent.exists()
