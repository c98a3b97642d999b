"""A smoke run of benchmarks/celery_overhead.py: it runs, prints its figures, and leans on no test module."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]

REPO = Path(__file__).resolve().parents[1]


def test_the_celery_benchmark_imports_no_test_module() -> None:
    for name in ("celery_overhead.py", "celery_throughput.py", "celery_app.py", "verdicts.py"):
        tree = ast.parse((REPO / "benchmarks" / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {module for module in imported if module and module.split(".")[0] == "tests"}, name


def test_the_celery_benchmark_runs_and_prints_both_measurements() -> None:
    tasks, every, rounds, pairs = 20, 5, 1, 2
    arguments = ["--broker", "rabbitmq", "--tasks", str(tasks), "--every", str(every), "--rounds", str(rounds)]
    arguments += ["--pairs", str(pairs), "--calls", "500", "--report-only"]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.celery_overhead", *arguments],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        cwd=REPO,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "pipeline.celery (prerun + postrun + the line)" in done.stdout
    assert "RQ TimedJob against Job" in done.stdout
    assert re.search(
        r"^  \(95% interval [-+][0-9.]+\.\.[-+][0-9.]+ µs\): (met|within noise|missed)$", done.stdout, re.M
    )
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("solo ", "prefork "))]
    # Per pool, the ratio of the rates and that of the tasks per CPU second.
    assert [row[:2] for row in rows] == [[pool, kind] for pool in ("solo", "prefork") for kind in ("tasks/s", "CPU")]
    for row in rows:
        # after the label ("CPU µs/task" is two words): both figures, the median ratio, its
        # interval, the ratio the cost predicts, the verdict
        figures = row[3:] if row[1] == "CPU" else row[2:]
        assert float(figures[0]) > 0 and float(figures[1]) > 0 and float(figures[2]) > 0, row
        assert re.fullmatch(r"[0-9.]+\.\.[0-9.]+", figures[3]) and re.fullmatch(r"0\.[0-9]{4}", figures[4]), row
        assert " ".join(figures[5:]) in ("met", "within noise", "missed"), row
    # Every task the timed workers ran wrote its line: per pool and pair, a warm-up round and
    # the measured ones, each a gate, the no-ops and a marker after every `every` of them.
    lines = 2 * pairs * (rounds + 1) * (1 + tasks + tasks // every)
    assert f"Timed lines written by the workers: {lines} " in done.stdout, done.stdout
