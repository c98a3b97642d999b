"""The Celery monitor's faults, each one line and a documented exit code: a RabbitMQ node down
and back up, wrong credentials, the management plugin missing, a vhost that does not exist,
and Celery's Redis unreachable or refusing the password."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer, free_port
from tests.support.celery_monitor import (
    MONITOR_USER,
    rabbit_args,
    run_celery_monitor,
    start_celery_monitor,
    wait_for,
)
from tests.support.monitor import assert_one_stderr_line_per_change, read_events, stop

pytestmark = [pytest.mark.rabbitmq, pytest.mark.redis, pytest.mark.celery, pytest.mark.jvm]


@pytest.fixture(scope="module")
def node(rabbitmq_node: RabbitMQNode) -> RabbitMQNode:
    rabbitmq_node.add_monitoring_user(MONITOR_USER)
    return rabbitmq_node


def _one_error(tmp_path: Path, *args: str) -> tuple[dict, str]:
    """Run ``--once``: exit 2, one error line in the log, one line on stderr."""
    done = run_celery_monitor(tmp_path / "f.log", "--once", *args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    [line] = read_events(tmp_path / "f.log")
    assert line["status"] == "critical" and line["system"] == "celery"
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
    return line, done.stderr


def test_wrong_credentials(node: RabbitMQNode, tmp_path: Path) -> None:
    line, stderr = _one_error(tmp_path, *rabbit_args(node, (MONITOR_USER[0], "bad-pass-9")))
    assert (line["error"], line["node"]) == ("auth", f"127.0.0.1:{node.api_port}")
    assert "bad-pass-9" not in stderr and "HTTP 401" in line["reason"]


def test_a_user_without_the_monitoring_tag_or_the_vhost_permission(node: RabbitMQNode, tmp_path: Path) -> None:
    node.ctl("add_user", "tt-management", "tt-management-pass", check=False)
    node.ctl("set_user_tags", "tt-management", "management")
    node.ctl("set_permissions", "-p", "/", "tt-management", "^$", "^$", "^$")
    line, _ = _one_error(tmp_path, *rabbit_args(node, ("tt-management", "tt-management-pass")))
    assert line["error"] == "permission" and "Not monitor user" in line["reason"] and "monitoring tag" in line["reason"]
    (tmp_path / "f.log").unlink()
    node.ctl("add_user", "tt-nowhere", "tt-nowhere-pass", check=False)
    node.ctl("set_user_tags", "tt-nowhere", "monitoring")  # no permission entry on any vhost
    line, _ = _one_error(tmp_path, *rabbit_args(node, ("tt-nowhere", "tt-nowhere-pass")))
    assert line["error"] == "permission" and "set_permissions -p / tt-nowhere" in line["reason"]


def test_a_vhost_that_does_not_exist(node: RabbitMQNode, tmp_path: Path) -> None:
    line, _ = _one_error(tmp_path, *rabbit_args(node, vhost="no-such-vhost"))
    assert line["error"] == "vhost" and "'no-such-vhost' does not exist" in line["reason"]


def test_the_management_plugin_missing(node: RabbitMQNode, tmp_path: Path) -> None:
    node.plugins("disable", "rabbitmq_management")
    try:
        line, _ = _one_error(tmp_path, *rabbit_args(node))
        assert line["error"] == "management" and "rabbitmq-plugins enable rabbitmq_management" in line["reason"]
        done = run_celery_monitor(tmp_path / "unused.log", "--check", "--check-window", "0", *rabbit_args(node))
        assert done.returncode == 2 and done.stdout.startswith("CRITICAL"), done.stdout
    finally:
        node.plugins("enable", "rabbitmq_management")
        node.wait_api()


def test_the_node_down_and_back_up(node: RabbitMQNode, tmp_path: Path) -> None:
    log = tmp_path / "loop.log"
    loop = start_celery_monitor(log, "--interval", "0.5", "--max-backoff", "1", *rabbit_args(node))
    try:
        wait_for(lambda: any("node" in e and "error" not in e for e in read_events(log)))
        node.stop_node()
        wait_for(lambda: len([e for e in read_events(log) if e.get("error") == "unreachable"]) >= 2, timeout=60)
        node.start()
        count = len(read_events(log))
        wait_for(lambda: any("error" not in e for e in read_events(log)[count:]), timeout=60)
    finally:
        _, stderr = stop(loop)
    # One line when it fails, one when it works again; one more per other state it passes
    # through meanwhile (a node starting up may answer before it can be read).
    assert_one_stderr_line_per_change(stderr, read_events(log))


def test_celerys_redis_unreachable_or_refusing_the_password(redis_server: RedisServer, tmp_path: Path) -> None:
    line, _ = _one_error(tmp_path, "--celery-broker", f"redis://127.0.0.1:{free_port()}/0")
    assert (line["broker"], line["error"]) == ("redis", "unreachable")
    (tmp_path / "f.log").unlink()
    wrong = redis_server.url.replace("redis://", "redis://nobody:bad-pass-9@", 1)
    line, stderr = _one_error(tmp_path, "--celery-broker", wrong)
    assert line["error"] == "auth" and "bad-pass-9" not in stderr


def test_celerys_redis_down_and_back_up(tmp_path: Path) -> None:
    """The loop writes an error line per attempt while Celery's Redis is down, and samples it again once it is back."""
    server = RedisServer()
    log = tmp_path / "loop.log"
    loop = start_celery_monitor(log, "--interval", "0.5", "--max-backoff", "1", "--celery-broker", server.url)
    try:
        wait_for(lambda: any(e.get("broker") == "redis" and "error" not in e for e in read_events(log)))
        port = server.port
        server.stop()
        wait_for(lambda: len([e for e in read_events(log) if e.get("error") == "unreachable"]) >= 2, timeout=60)
        server = RedisServer(port)
        count = len(read_events(log))
        wait_for(lambda: any("error" not in e for e in read_events(log)[count:]), timeout=60)
    finally:
        _, stderr = stop(loop)
        server.stop()
    assert_one_stderr_line_per_change(stderr, read_events(log))  # one line when it fails, one when it works again


def test_check_exit_codes(node: RabbitMQNode, tmp_path: Path) -> None:
    done = run_celery_monitor(tmp_path / "u.log", "--check", "--check-window", "0", *rabbit_args(node))
    assert done.returncode in (0, 1, 2) and done.stdout.split()[0] in ("OK", "WARN", "CRITICAL"), done.stdout
    bad = run_celery_monitor(tmp_path / "u.log", "--celery-broker", "amqp://h//")  # no --rabbitmq-api
    assert bad.returncode == 2 and "needs --rabbitmq-api" in bad.stderr
