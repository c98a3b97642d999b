"""From a demo task to the "Slowest tasks" search, every link the tests can run.

Real redis-server and real ``rq-task-time-worker`` processes run the demo tasks from
worker/; their log goes through the Logstash pipeline's grok and date stages on Logstash's
own regex engine and date library (``tests.support.logstash``); the documents are
bulk-created into the real Elasticsearch by the least-privilege Logstash writer, under the
templates bootstrap installed; the saved search runs as written in its object file. Only
Logstash's file input and Kibana's rendering are not exercised (README: "What is verified how").
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch
from redis import Redis
from rq import Queue

from harness import kibana_objects
from tests.conftest import ElasticsearchTarget
from tests.support import logstash
from tests.support.lines import parse
from tests.support.workers import read_lines, worker_env

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "worker"


def demo_env(log: Path) -> dict[str, str]:
    env = worker_env(log, DEMO_MAX_SECONDS="0.8")
    env["PYTHONPATH"] = f"{DEMO}:{env['PYTHONPATH']}"
    return env


def run_demo_worker(redis_url: str, log: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "--burst", "--url", redis_url, "default"],
        env=demo_env(log),
        cwd=DEMO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.redis
def test_producer_enqueues_the_demo_mix_at_its_rate(redis: Redis, redis_url: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "producer.py", "--count", "40", "--rate", "200", "--url", redis_url],
        env=demo_env(tmp_path / "unused.log"),
        cwd=DEMO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    queue = Queue("default", connection=redis)
    assert queue.count == 40
    names = {job.func_name for job in queue.get_jobs()}
    assert names <= {"jobs.send_mail", "jobs.compute", "jobs.simple_task", "jobs.flaky_upload"}
    assert len(names) >= 3
    assert {job.timeout for job in queue.get_jobs() if job.func_name == "jobs.compute"} == {3}


@pytest.mark.unit
def test_producer_rejects_a_bad_rate_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "producer.py", "--rate", "0"], cwd=DEMO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].endswith("--rate must be positive")


@pytest.mark.redis
@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_demo_tasks_end_first_in_the_slowest_tasks_search(
    redis: Redis, redis_url: str, tmp_path: Path, es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    log = tmp_path / "task-time.log"
    subprocess.run(
        [sys.executable, "producer.py", "--count", "24", "--rate", "500", "--url", redis_url],
        env=demo_env(log),
        cwd=DEMO,
        check=True,
        timeout=60,
    )
    done = run_demo_worker(redis_url, log)
    assert done.returncode == 0, done.stderr
    lines = read_lines(log)
    assert len(lines) == 24
    slowest = max((parse(text) for text in lines), key=lambda fields: fields["task_time"])

    # Logstash's filter stages, then its output: bulk "create" into the daily index.
    pipeline = logstash.Pipeline(environ={})
    operations = []
    for text in lines:
        event = pipeline.run(text, path=str(log))
        assert "tags" not in event, text
        metadata = event["@metadata"]
        operations += [{"create": {"_index": metadata["_index"], "_id": metadata["_id"]}}, logstash.document(event)]
    response = writer.bulk(operations=operations)
    assert not response["errors"], response
    # Logstash reading the same lines again (a restart before its sincedb was saved): refused, not counted twice.
    again = writer.bulk(operations=operations)
    assert {item["create"]["status"] for item in again["items"]} == {409}
    es.client().indices.refresh(index="task-time-*")

    objects = kibana_objects.objects()
    data_view = objects[("index-pattern", "task-time")]["attributes"]["title"]
    search = objects[("search", "task-time-slowest")]
    hits = es.client().search(index=data_view, **kibana_objects.search_request(search))["hits"]["hits"]
    assert len(hits) == 24
    first = hits[0]["_source"]
    assert (first["job_id"], first["task_name"]) == (slowest["job"], slowest["task"])
    assert first["task_name"].startswith("jobs.")
    times = [hit["_source"]["task_time"] for hit in hits]
    assert times == sorted(times, reverse=True)
    columns = search["attributes"]["columns"]
    # Every column of the saved search has a value, but "system": only Celery lines write it.
    assert all(column in first for column in columns if column != "system")
