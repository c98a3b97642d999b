"""Smoke run of ``benchmarks.read_path`` on the session's cluster: it runs and prints every measurement.

The targets are judged by running the benchmark at scale (README, Benchmarks), never here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from elasticsearch import Elasticsearch

from tests.conftest import ElasticsearchTarget
from tests.support import kibana_objects

REPO = Path(__file__).resolve().parents[1]
EXECUTIONS = 2000


def test_benchmark_prints_a_ratio_per_saved_search_and_panel_and_bytes_per_execution(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    env = es.bootstrap_env(TASK_TIME_TESTS_DESTRUCTIVE="1", LOGSTASH_WRITER_PASSWORD="writer-pass-2")
    arguments = ["--executions", str(EXECUTIONS), "--ingest", "500", "--repeats", "1", "--bulk", "700"]
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

    titles = [
        saved["attributes"]["title"]
        for (type_, _), saved in kibana_objects.objects().items()
        if type_ in ("search", "lens")
    ]
    sections = re.split(r"^last (\d+) days:", out, flags=re.MULTILINE)
    ranges = dict(zip(sections[1::2], sections[2::2], strict=True))
    assert set(ranges) == {"7", "30"}
    for section in ranges.values():
        assert re.search(r"^  _count +\d+\.\d+ s$", section, re.MULTILINE), section
        for title in titles:
            [line] = [line for line in section.splitlines() if line.startswith(f"  {title} (")]
            assert re.search(r" \d+\.\d+ s +ratio +\d+\.\d to _count +(met|missed) +\((\d+) hits", line), line
    # Everything loaded counts in the 30-day range, every parsed execution in "Slowest tasks".
    [slowest] = [line for line in ranges["30"].splitlines() if line.startswith("  Slowest tasks (")]
    hits = int(re.search(r"\((\d+) hits", slowest).group(1))
    unparsed = int(re.search(r"executions: (\d+) over 30 days, (\d+) of them unparsed", out).group(2))
    assert hits == EXECUTIONS - unparsed

    assert re.search(r"^bytes per execution on disk: \d+\.\d +target <= 150 +(met|missed)$", out, re.MULTILINE)
    assert re.search(r"^ingest as task_time_logstash, 125 per bulk, 2 senders: [\d,]+ executions/s", out, re.MULTILINE)
    assert re.search(r"^heap: \d+ MB used of \d+ MB after loading$", out, re.MULTILINE)
    assert es.client().count(index="task-time-*")["count"] == EXECUTIONS
