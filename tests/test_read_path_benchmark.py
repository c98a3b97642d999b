"""The read-path benchmark and the mapping choices it justifies.

A smoke run of ``benchmarks.read_path`` on the session's cluster checks that it runs and
prints every measurement; the targets are judged by running it at scale (README,
Benchmarks), never here. The other tests check that the storage-saving mapping choices
cost no feature: what Kibana sorts or aggregates keeps doc values, and job ids and
unparsed lines stay searchable.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from harness import kibana_objects
from tests.conftest import ElasticsearchTarget, bootstrap

REPO = Path(__file__).resolve().parents[1]
MAPPING = json.loads((REPO / "elasticsearch" / "component-templates" / "task-time-mappings.json").read_text())
EXECUTIONS = 2000


@pytest.mark.elasticsearch
def test_benchmark_prints_a_ratio_per_saved_search_and_panel_and_bytes_per_execution(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    env = es.bootstrap_env(TASK_TIME_TESTS_DESTRUCTIVE="1", LOGSTASH_WRITER_PASSWORD="writer-pass-2")
    arguments = ["--executions", str(EXECUTIONS), "--days", "3", "--ingest", "500", "--repeats", "1", "--bulk", "700"]
    arguments += ["--index-setting", "index.codec=default"]  # a setting to compare with the templates' own
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.read_path", *arguments],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout

    titles = []  # (title, kind) of every request Kibana sends for the saved objects on task times
    for (type_, _), saved in kibana_objects.reading("task-time", kibana_objects.objects()).items():
        title = saved["attributes"]["title"]
        if type_ == "lens":
            titles.append((title, "lens"))
        elif type_ == "search":
            titles.append((title, "search"))
            if not saved["attributes"].get("hideChart"):
                titles.append((title, "search chart"))
    sections = re.split(r"^last (\d+) days:", out, flags=re.MULTILINE)
    ranges = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert set(ranges) == {"7", "30"}
    for section in ranges.values():
        assert re.search(r"^  _count +\d+\.\d+ s$", section, re.MULTILINE), section
        for title, kind in titles:
            [line] = [line for line in section.splitlines() if line.startswith(f"  {title} ({kind})")]
            assert re.search(r" \d+\.\d+ s +ratio +\d+\.\d to _count +(met|missed) +\((\d+) hits", line), line
    # Everything loaded counts in the 30-day range, every parsed execution in "Slowest tasks".
    [slowest] = [line for line in ranges["30"].splitlines() if line.startswith("  Slowest tasks (search)")]
    hits = int(re.search(r"\((\d+) hits", slowest).group(1))
    unparsed = int(re.search(r"executions: (\d+) over 3 days, (\d+) of them unparsed", out).group(2))
    assert hits == EXECUTIONS - unparsed

    assert re.search(r"^bytes per execution on disk: \d+\.\d +target <= 150 +(met|missed)$", out, re.MULTILINE)
    assert re.search(r"^ingest as task_time_logstash, 125 per bulk, 2 senders: [\d,]+ executions/s", out, re.MULTILINE)
    assert re.search(r"^heap: \d+ MB used of \d+ MB after loading$", out, re.MULTILINE)
    client = es.client()
    assert client.count(index="task-time-*")["count"] == EXECUTIONS
    assert "trying, on top of the templates: index.codec=default" in out
    codecs = client.indices.get_settings(index="task-time-*", name="index.codec", flat_settings=True)
    assert {settings["settings"]["index.codec"] for settings in codecs.values()} == {"default"}
    # The trial changed the installed template; bootstrap puts the project's back.
    assert bootstrap(es, "--skip-kibana").returncode == 0
    [installed] = client.cluster.get_component_template(name="task-time-mappings")["component_templates"]
    assert installed["component_template"]["template"]["settings"]["index"]["codec"] == "best_compression"


def _mapped(field: str) -> dict:
    spec = {"properties": MAPPING["template"]["mappings"]["properties"]}
    for part in field.split("."):
        spec = spec["properties"][part]
    return spec


@pytest.mark.unit
def test_every_field_kibana_sorts_or_aggregates_keeps_doc_values() -> None:
    used = set()
    for (type_, _), saved in kibana_objects.reading("task-time", kibana_objects.objects()).items():
        if type_ == "search":
            used |= {field for field, _ in saved["attributes"]["sort"]}
        elif type_ == "lens":
            columns = kibana_objects.lens_layer(saved)["columns"].values()
            used |= {c["sourceField"] for c in columns if c.get("sourceField") not in (None, "___records___")}
    assert {"task_time", "@timestamp", "task_name", "wait_time"} <= used
    for field in used:
        assert _mapped(field).get("doc_values", True), f"Kibana sorts or aggregates on {field}: it needs doc values"


@pytest.mark.elasticsearch
def test_job_ids_and_unparsed_lines_stay_searchable(es: ElasticsearchTarget) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    expected = json.loads((REPO / "tests" / "golden" / "task-time.expected.json").read_text(encoding="utf-8"))
    operations = []
    for item in expected:
        operations += [{"create": {"_index": item["index"], "_id": item["id"]}}, item["document"]]
    assert not client.bulk(operations=operations, refresh="wait_for")["errors"]
    job = "5f0c2a8e-9b7d-4c1e-8f3a-2b6d9e1c4a70"
    hits = client.search(index="task-time-*", q=f'job_id:"{job}"')["hits"]["hits"]
    assert [hit["_source"]["job_id"] for hit in hits] == [job]
    # Parsed lines keep no message, yet a value typed alone in Kibana's search bar (every field) finds them.
    anywhere = client.search(index="task-time-*", q=f'"{job}"')["hits"]["hits"]
    assert [hit["_index"] for hit in anywhere] == [hit["_index"] for hit in hits] and "message" not in hits[0][
        "_source"
    ]
    # Phrases need positions: a message indexed without them would make this an error.
    phrase = client.search(index="task-time-unparsed-*", query={"match_phrase": {"message": "most recent call last"}})
    assert [hit["_source"]["message"] for hit in phrase["hits"]["hits"]] == ["Traceback (most recent call last):"]
    words = client.search(index="task-time-*", q="message:nan AND tags:task_time_unparsed")["hits"]["hits"]
    assert [hit["_source"]["message"].endswith("Task-time: nan") for hit in words] == [True]
