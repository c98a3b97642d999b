"""A smoke run of benchmarks/celery_overhead.py: it runs, prints its figures, and leans on no test module."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis, pytest.mark.rabbitmq]

REPO = Path(__file__).resolve().parents[1]


def test_the_celery_benchmark_imports_no_test_module() -> None:
    for name in ("celery_overhead.py", "celery_app.py"):
        tree = ast.parse((REPO / "benchmarks" / name).read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not {module for module in imported if module and module.split(".")[0] == "tests"}, name


def test_the_celery_benchmark_runs_and_prints_both_measurements() -> None:
    arguments = ["--broker", "rabbitmq", "--tasks", "20", "--pairs", "1", "--calls", "500", "--report-only"]
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
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith(("solo ", "prefork "))]
    assert [row[0] for row in rows] == ["solo", "prefork"]
    assert "timed lines written by the workers: 44" in done.stdout  # 2 pools x (20 tasks + 2 markers)
