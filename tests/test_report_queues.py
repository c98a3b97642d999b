"""The report's second table: queue-monitor lines, read as the queue-monitor pipeline reads them."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from redis import Redis
from rq import Queue

from harness.monitor import grant_monitor, monitor_url
from harness.redis_server import RedisServer
from pipeline.lines import queue as monitor_line
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import decode_name
from pipeline.report.queues import QueueLines
from tests import tasks
from tests.support import logstash
from tests.support.monitor import QUEUE_VALUES, run_monitor
from tests.test_report import report, report_json, write_log

REPO = Path(__file__).resolve().parents[1]
MONITOR_CONFIG = REPO / "logstash" / "pipeline" / "queue-monitor.conf"
GOLDEN = REPO / "tests" / "golden" / "queue-monitor.log"


def queue_line(timestamp: float, queue: str, status: str, depth: int, latency: float | None, **values: object) -> str:
    values = {**QUEUE_VALUES, "queue": queue, "depth": depth, "latency": latency, **values}
    return format_line(timestamp, monitor_line.format_fields("m.1", status, "queue", values), LineClock())


@pytest.mark.jvm
def test_every_golden_monitor_line_is_taken_or_left_as_the_pipeline_decides() -> None:
    lines = GOLDEN.read_text(encoding="utf-8").split("\n")[:-1]
    events = logstash.Pipeline(MONITOR_CONFIG, environ={}).run_many(lines)
    reader = QueueLines(LineClock())
    for text, event in zip(lines, events, strict=True):
        parsed = "queue_monitor_unparsed" not in event.get("tags", [])
        assert reader.offer(text.encode()) == parsed, text
        if parsed and "queue" in event:
            state = reader.queues[
                (event.get("system", "rq"), event.get("broker", "redis"), decode_name(event["queue"]))
            ]
            assert (state.status, state.depth, state.latency) == (event["status"], event["depth"], event.get("latency"))


@pytest.mark.unit
def test_latest_state_and_worst_of_all_samples_per_queue(tmp_path: Path) -> None:
    now = time.time()
    lines = [
        queue_line(now - 120, "default", "critical", 40, 400.0, workers=0, idle=0, new_failed=2),
        queue_line(now - 60, "default", "warn", 12, 35.5, abandoned=1, new_failed=1),
        queue_line(now - 30, "high", "ok", 0, 0.0),
        queue_line(now - 200, "low", "ok", 3, 1.0),  # before --since below
    ]
    (tmp_path / "queue-monitor.log").write_text("\n".join(lines) + "\n", encoding="utf-8")
    write_log(tmp_path / "task-time.log", [("jobs.a", 1.5, "default", "finished", 0.1)], start=now - 10)
    document = report_json(str(tmp_path), "--since", "150s")
    assert [t["task"] for t in document["tasks"]] == ["jobs.a"]
    assert document["unparsed"] == 0 and document["parsed"] == 5  # one task line, four monitor lines
    queues = {q["queue"]: q for q in document["queues"]}
    assert list(queues) == ["default", "high"]  # worst first; low's only sample is before --since
    default = queues["default"]
    assert (default["status"], default["depth"], default["latency"]) == ("warn", 12, 35.5)  # the latest sample
    assert (default["worst_latency"], default["max_depth"], default["abandoned"]) == (400.0, 40, 1)
    assert (default["new_failed"], default["warn"], default["critical"], default["samples"]) == (3, 1, 1, 2)
    assert report_json(str(tmp_path), "--queue", "high")["queues"][0]["queue"] == "high"
    table = report(str(tmp_path)).stdout.decode()
    assert "queues (queue-monitor lines" in table and "6.67 min" in table  # 400 s, the worst latency


@pytest.mark.redis
def test_lines_from_the_real_monitor_show_the_queue_without_a_worker(
    redis: Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    grant_monitor(redis)
    queue = Queue("nobody-listens", connection=redis)
    for _ in range(3):
        queue.enqueue(tasks.no_op)
    done = run_monitor(monitor_url(redis_server.url), tmp_path / "queue-monitor.log", "--once")
    assert done.returncode == 0, done.stderr
    document = report_json(str(tmp_path / "queue-monitor.log"))
    [state] = document["queues"]
    assert (state["queue"], state["status"], state["depth"], state["workers"]) == ("nobody-listens", "critical", 3, 0)
    assert document["unparsed"] == 0 and document["tasks"] == []
