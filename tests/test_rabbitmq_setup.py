"""The compose ``celery`` profile's ``rabbitmq-setup`` and ``celery-monitor`` on a real RabbitMQ node.

Both services' environments are taken from docker-compose.yml as compose-go resolves it (with
``.env``), pointed at the test node (``rabbitmq:15672`` and ``rabbitmq:5672`` become its
ports), whose administrator is made compose's (``RABBITMQ_USER`` / ``RABBITMQ_PASSWORD``).
rabbitmq/monitor_user.py runs as a process, as in the container.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.rabbitmq import RabbitMQNode
from pipeline import settings
from tests.support.celery_monitor import amqp_connection, wait_for
from tests.support.monitor import monitor_env
from tests.support.rabbitmq_setup import run_setup
from tests.test_compose import env_file, load_project

pytestmark = [pytest.mark.rabbitmq, pytest.mark.celery, pytest.mark.compose]

QUEUE = "compose-setup-q"


def pointed_at(node: RabbitMQNode, environment: dict[str, Any]) -> dict[str, str]:
    """A compose service's environment with the broker's addresses replaced by the test node's."""
    pointed = {
        key: str(value)
        .replace("rabbitmq:15672", f"127.0.0.1:{node.api_port}")
        .replace("rabbitmq:5672", f"127.0.0.1:{node.amqp_port}")
        for key, value in environment.items()
    }
    assert pointed != {key: str(value) for key, value in environment.items()}, "no broker address to replace"
    return pointed


@pytest.fixture(scope="module")
def composed(rabbitmq_node: RabbitMQNode) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """The setup's and the celery monitor's environments, pointed at the node."""
    services = load_project("celery")["services"]
    env = env_file()
    admin = env["RABBITMQ_USER"]
    rabbitmq_node.ctl("add_user", admin, env["RABBITMQ_PASSWORD"], check=False)
    rabbitmq_node.ctl("change_password", admin, env["RABBITMQ_PASSWORD"])
    rabbitmq_node.ctl("set_user_tags", admin, "administrator")
    rabbitmq_node.ctl("set_permissions", "-p", "/", admin, ".*", ".*", ".*")
    setup = pointed_at(rabbitmq_node, services["rabbitmq-setup"]["environment"])
    monitor = pointed_at(rabbitmq_node, services["celery-monitor"]["environment"])
    yield setup, monitor
    for user in (setup["RABBITMQ_MONITOR_USER"], admin):
        rabbitmq_node.ctl("delete_user", user, check=False)


def monitor_user(setup: dict[str, str]) -> tuple[str, str]:
    return setup["RABBITMQ_MONITOR_USER"], setup["RABBITMQ_MONITOR_PASSWORD"]


def state(node: RabbitMQNode, user: str) -> tuple[list[str], list[tuple[str, str, str, str]]]:
    """The user's tags and, per vhost, its configure, write and read patterns (read as the harness's admin)."""
    tags = node.api("GET", f"/api/users/{user}")["tags"]
    permissions = node.api("GET", f"/api/users/{user}/permissions")
    return (
        tags.split(",") if isinstance(tags, str) else tags,
        [(p["vhost"], p["configure"], p["write"], p["read"]) for p in permissions],
    )


def assert_quiet_about_passwords(done: subprocess.CompletedProcess[str], setup: dict[str, str]) -> None:
    for secret in (setup["RABBITMQ_PASSWORD"], setup["RABBITMQ_MONITOR_PASSWORD"]):
        assert secret not in done.stdout + done.stderr


def test_the_setup_creates_the_monitoring_only_user_and_running_it_again_is_fine(
    rabbitmq_node: RabbitMQNode, composed: tuple[dict[str, str], dict[str, str]]
) -> None:
    setup, _ = composed
    user = monitor_user(setup)
    rabbitmq_node.ctl("delete_user", user[0], check=False)
    for _ in range(2):
        done = run_setup(setup)
        assert done.returncode == 0, done.stderr
        assert_quiet_about_passwords(done, setup)
        assert done.stdout.count("\n") == 1 and f"user '{user[0]}'" in done.stdout and not done.stderr
        assert state(rabbitmq_node, user[0]) == (["monitoring"], [("/", "^$", "^$", "^$")])
        assert rabbitmq_node.api("GET", "/api/whoami", user=user)["name"] == user[0]  # the password from .env


def test_the_setup_takes_back_what_a_user_of_that_name_had_too_much(
    rabbitmq_node: RabbitMQNode, composed: tuple[dict[str, str], dict[str, str]]
) -> None:
    setup, _ = composed
    user = monitor_user(setup)
    rabbitmq_node.ctl("add_user", user[0], "an-old-password", check=False)
    rabbitmq_node.ctl("change_password", user[0], "an-old-password")
    rabbitmq_node.ctl("set_user_tags", user[0], "administrator", "monitoring")
    rabbitmq_node.ctl("set_permissions", "-p", "/", user[0], ".*", ".*", ".*")
    done = run_setup(setup)
    assert done.returncode == 0, done.stderr
    assert state(rabbitmq_node, user[0]) == (["monitoring"], [("/", "^$", "^$", "^$")])
    with pytest.raises(urllib.error.HTTPError) as refused:
        rabbitmq_node.api("GET", "/api/whoami", user=(user[0], "an-old-password"))
    assert refused.value.code == 401


def test_a_wrong_administrator_password_is_one_line_without_secrets(
    rabbitmq_node: RabbitMQNode, composed: tuple[dict[str, str], dict[str, str]]
) -> None:
    setup, _ = composed
    wrong = {**setup, "RABBITMQ_PASSWORD": "notTheAdminPassword1"}
    done = run_setup(wrong, timeout=30)  # a 401 is not waited out
    assert done.returncode == 1 and not done.stdout
    assert done.stderr.count("\n") == 1 and "HTTP 401" in done.stderr, done.stderr
    assert_quiet_about_passwords(done, wrong)


def test_the_composed_celery_monitor_samples_the_node_but_its_user_can_neither_publish_nor_consume(
    rabbitmq_node: RabbitMQNode, composed: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    import amqp

    setup, environment = composed
    assert run_setup(setup).returncode == 0
    user = monitor_user(setup)
    admin = amqp_connection(rabbitmq_node)
    admin.channel().queue_declare(QUEUE, auto_delete=False)
    admin.channel().basic_publish(amqp.Message("x"), routing_key=QUEUE)
    admin.close()
    wait_for(lambda: rabbitmq_node.api("GET", f"/api/queues/%2F/{QUEUE}").get("messages") == 1)

    # The monitor with the service's environment, as the container runs it (no endpoint: a one-off sample).
    log = tmp_path / "queue-monitor.log"
    variables = {k: v for k, v in environment.items() if not k.startswith("TASK_TIME_MONITOR_METRICS_")}
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.monitor", "--once"],
        env=monitor_env(**{**variables, settings.MONITOR_LOG.variable: str(log)}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    lines = log.read_text().splitlines()
    [line] = [line for line in lines if f" Queue: {QUEUE} " in line]
    assert " Monitor: compose-celery-monitor " in line and " System: celery Broker: rabbitmq " in line
    assert " Depth: 1 " in line and " Consumers: 0 " in line
    assert any(" Node: " in line and " Memory-alarm: false " in line for line in lines)

    # That user cannot publish or consume, over AMQP or through the API.
    connection = amqp_connection(rabbitmq_node, user)
    with pytest.raises(amqp.exceptions.AccessRefused):
        connection.channel().basic_publish_confirm(amqp.Message("forged"), routing_key=QUEUE)
    with pytest.raises(amqp.exceptions.AccessRefused):
        connection.channel().basic_get(QUEUE)
    with pytest.raises(amqp.exceptions.AccessRefused):
        connection.channel().basic_consume(QUEUE, callback=lambda message: None)
    connection.collect()
    publish = {"properties": {}, "routing_key": QUEUE, "payload": "forged", "payload_encoding": "string"}
    with pytest.raises(urllib.error.HTTPError):
        rabbitmq_node.api("POST", "/api/exchanges/%2F/amq.default/publish", publish, user=user)
    get = {"count": 1, "ackmode": "ack_requeue_false", "encoding": "auto"}
    with pytest.raises(urllib.error.HTTPError):
        rabbitmq_node.api("POST", f"/api/queues/%2F/{QUEUE}/get", get, user=user)
    assert rabbitmq_node.api("GET", f"/api/queues/%2F/{QUEUE}")["messages"] == 1  # nothing published, nothing taken
    rabbitmq_node.api("DELETE", f"/api/queues/%2F/{QUEUE}")
