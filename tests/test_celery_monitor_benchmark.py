"""The Celery monitor benchmark runs end to end at small sizes against the tests' Redis and RabbitMQ node."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.rabbitmq import RabbitMQNode
from harness.redis_server import RedisServer

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq, pytest.mark.celery]
REPO = Path(__file__).resolve().parents[1]


def test_the_benchmark_runs_and_shows_constant_costs(redis_server: RedisServer, rabbitmq_node: RabbitMQNode) -> None:
    command = [sys.executable, "-m", "benchmarks.celery_monitor", "--redis", redis_server.url.replace("/0", "/9")]
    command += [
        "--amqp",
        rabbitmq_node.amqp_url(),
        "--api",
        rabbitmq_node.api_url(),
        "--queues",
        "3,7",
        "--repeat",
        "2",
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # Celery on Redis, queues named: INFO + HLEN, then LLEN and LINDEX of 4 priority lists per queue; 2 round trips.
    assert re.search(r"^redis\s+Celery, queues named\s+3\s+26 commands\s+2\s", out, re.M), out
    assert re.search(r"^redis\s+Celery, queues named\s+7\s+58 commands\s+2\s", out, re.M), out
    assert re.search(r"^redis\s+RQ\s+7\s+\d+ commands\s+3\s", out, re.M), out
    assert re.search(r"^rabbitmq\s+Celery\s+3\s+2 requests\s+2\s", out, re.M), out
    assert re.search(r"^rabbitmq\s+Celery\s+7\s+2 requests\s+2\s", out, re.M), out
    source = (REPO / "benchmarks" / "celery_monitor.py").read_text()
    assert not re.search(r"^(from|import) tests", source, re.M)  # benchmarks do not import tests.*
