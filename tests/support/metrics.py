"""Run the monitor with its metrics endpoint and read what it serves."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

# The one import of the Redis harness in the metrics tests (it may move to harness/): the rest import it from here.
from harness.redis_server import RedisServer, free_port
from tests.support.celery_monitor import start_celery_monitor
from tests.support.monitor import start_monitor, stop

__all__ = ["MetricsMonitor", "RedisServer", "free_port", "get", "run_to_end", "scrape", "value"]


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    """Status and body of a GET (errors included)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of ``/metrics`` as ``{(name, labels): value}``."""
    status, body = get(f"http://127.0.0.1:{port}/metrics")
    assert status == 200, body
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(body.decode())
        for sample in family.samples
    }


def value(metrics: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    """The one sample of ``name`` whose labels include ``labels``."""
    found = [
        number for (key, have), number in metrics.items() if key == name and set(labels.items()) <= dict(have).items()
    ]
    assert len(found) == 1, (name, labels, found)
    return found[0]


class MetricsMonitor:
    """``python -m pipeline.monitor --metrics-port`` in the background, until ``stop()``."""

    def __init__(self, url: str | None, log: Path, *args: str) -> None:
        """RQ's Redis at ``url`` (None: no ``--url``, only the Celery broker ``args`` name)."""
        self.port = free_port()
        self.log = log
        metrics = ("--metrics-port", str(self.port), *args)
        self.process = start_monitor(url, log, *metrics) if url else start_celery_monitor(log, *metrics)

    def wait_for_sample(self, samples: int = 1, timeout: float = 30) -> dict[str, Any]:
        """The ``/queues`` document once every source took ``samples`` good samples."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.process.communicate()
            try:
                status, body = get(f"http://127.0.0.1:{self.port}/queues", timeout=1)
                if status == 200:
                    metrics = scrape(self.port)
                    counts = [n for (name, _), n in metrics.items() if name == "task_time_monitor_samples_total"]
                    if counts and min(counts) >= samples:
                        return json.loads(body)  # type: ignore[no-any-return]
            except OSError:
                pass
            assert time.monotonic() < deadline, "no sample served in time"
            time.sleep(0.1)

    def stop(self) -> tuple[Any, Any]:
        return stop(self.process)


def run_to_end(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=60, **kwargs)
