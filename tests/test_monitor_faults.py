"""Faults: Redis unreachable, wrong password, an ACL too narrow, Redis Cluster; real processes, real redis-server."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest
from redis import Redis

from harness.monitor import PASSWORD, grant_monitor, monitor_url
from harness.redis_server import RedisServer, free_port
from pipeline.monitor import acl
from tests.support.monitor import read_events, run_monitor, start_monitor, start_redis, stop

pytestmark = [pytest.mark.redis, pytest.mark.jvm]

FAST = ("--interval", "0.2", "--max-backoff", "0.8", "--name", "mon-a")


def _wait_for(log: Path, predicate, timeout: float = 30) -> list[dict]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(log)
        if predicate(events):
            return events
        assert time.monotonic() < deadline, events[-3:]
        time.sleep(0.1)


def _errors(events: list[dict], kind: str) -> list[dict]:
    return [event for event in events if event.get("error") == kind]


def test_unreachable_redis_is_logged_backed_off_and_recovered_from(tmp_path: Path) -> None:
    port, log = free_port(), tmp_path / "m.log"
    monitor = start_monitor(f"redis://{acl.USER}:{PASSWORD}@127.0.0.1:{port}/0", log, *FAST)
    server = None
    try:
        events = _wait_for(log, lambda events: len(_errors(events, "unreachable")) >= 5)
        assert monitor.poll() is None, "the monitor must keep running"
        down = _errors(events, "unreachable")
        assert all(event["status"] == "critical" and event["monitor"] == "mon-a" for event in down)
        assert all(event["redis"] == f"127.0.0.1:{port}/0" for event in down)
        gaps = [(b["@timestamp"] - a["@timestamp"]).total_seconds() for a, b in itertools.pairwise(down)]
        assert gaps[0] >= 0.15 and max(gaps) >= 0.6 and max(gaps) < 2, gaps  # backs off, capped
        server = start_redis(port, tmp_path)
        grant_monitor(Redis(port=port))
        _wait_for(log, lambda events: any("used_memory" in event for event in events))
    finally:
        _, stderr = stop(monitor)
        if server is not None:
            stop(server)
    assert monitor.returncode == 0
    lines = stderr.splitlines()
    assert len(lines) == 2, lines  # one per change of state
    assert lines[0].startswith(f"rq-task-time-monitor mon-a: cannot sample Redis at 127.0.0.1:{port}/0 (unreachable)")
    assert lines[1] == f"rq-task-time-monitor mon-a: Redis at 127.0.0.1:{port}/0 can be sampled again"


def test_wrong_password_then_fixed(redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    grant_monitor(redis, password="another-password")
    log = tmp_path / "m.log"
    monitor = start_monitor(monitor_url(redis_server.url), log, *FAST)
    try:
        _wait_for(log, lambda events: len(_errors(events, "auth")) >= 3)
        assert monitor.poll() is None
        grant_monitor(redis)
        _wait_for(log, lambda events: any("used_memory" in event for event in events))
    finally:
        _, stderr = stop(monitor)
    lines = stderr.splitlines()
    assert len(lines) == 2, lines
    assert "(auth)" in lines[0] and "mon-a" in lines[0]
    assert "WRONGPASS" in lines[0] or "invalid username-password" in lines[0]


def test_an_acl_without_info_names_what_is_missing(redis: Redis, redis_server: RedisServer, tmp_path: Path) -> None:
    grant_monitor(redis, rules=tuple(rule for rule in acl.RULES if rule != "+info"))
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "m.log", "--once", "--name", "mon-b")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("rq-task-time-monitor mon-b: cannot sample Redis at ") and "(permission)" in line
    assert "NOPERM" in line and "+info" in line
    [event] = read_events(tmp_path / "m.log")
    assert (event["status"], event["error"]) == ("critical", "permission")


def test_a_redis_cluster_node_is_refused_with_one_line(tmp_path: Path) -> None:
    port = free_port()
    # The cluster bus port defaults to port + 10000, past 65535 for a high free port: name one.
    cluster = ("--cluster-enabled", "yes", "--cluster-port", str(free_port()), "--cluster-config-file")
    server = start_redis(port, tmp_path, *cluster, str(tmp_path / "n.conf"))
    try:
        for mode in ("--once", "--check"):
            done = run_monitor(f"redis://127.0.0.1:{port}/0", tmp_path / "m.log", mode, "--name", "mon-c")
            assert done.returncode == 2, (mode, done.stdout, done.stderr)
            [line] = done.stderr.splitlines()
            assert line.startswith("rq-task-time-monitor mon-c: refusing: ") and "cluster_enabled:1" in line
        started = time.monotonic()
        looping = run_monitor(f"redis://127.0.0.1:{port}/0", tmp_path / "m.log", "--interval", "0.1", timeout=30)
        assert looping.returncode == 2 and time.monotonic() - started < 20  # no retry loop
        assert [event["error"] for event in read_events(tmp_path / "m.log")] == ["cluster"] * 2
    finally:
        stop(server)
