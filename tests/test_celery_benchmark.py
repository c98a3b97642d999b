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
    tasks, every, rounds, pairs, work_tasks = 20, 5, 1, 2, 8
    arguments = ["--broker", "rabbitmq", "--tasks", str(tasks), "--every", str(every), "--rounds", str(rounds)]
    arguments += ["--pairs", str(pairs), "--work-ms", "2", "--work-tasks", str(work_tasks)]
    arguments += ["--calls", "500", "--report-only"]
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
    # Two passes: no-op tasks, reported; then tasks of 2 ms of CPU, judged.
    noop, work = done.stdout.split("throughput on rabbitmq: ")[1:]
    assert "20\nno-op tasks at the same time" in noop and "reported, not judged" in noop
    assert "8\ntasks of 2 ms of CPU at the same time" in work and "target: median ratio >= 0.99" in work
    for text, words in ((noop, ("reported",)), (work, ("met", "within noise", "missed"))):
        rows = [line.split() for line in text.splitlines() if line.startswith(("solo ", "prefork "))]
        # Per pool, the ratio of the rates and that of the tasks per CPU second.
        expected = [[pool, kind] for pool in ("solo", "prefork") for kind in ("tasks/s", "CPU")]
        assert [row[:2] for row in rows] == expected
        for row in rows:
            # after the label ("CPU µs/task" is two words): both figures, the median ratio, its
            # interval, the ratio the cost predicts, the verdict
            figures = row[3:] if row[1] == "CPU" else row[2:]
            assert float(figures[0]) > 0 and float(figures[1]) > 0 and float(figures[2]) > 0, row
            assert re.fullmatch(r"[0-9.]+\.\.[0-9.]+", figures[3]) and re.fullmatch(r"0\.[0-9]{4}", figures[4]), row
            assert " ".join(figures[5:]) in words, row
        for pool in ("solo", "prefork"):  # what timing adds, and the task size the target needs: 99 times it
            pattern = rf"^{pool}: timing adds (-?[0-9]+) µs of CPU per task; .* ([0-9.]+) ms of CPU or more$"
            found = re.search(pattern, text, re.M)
            assert found, text
            assert float(found[2]) == pytest.approx(max(int(found[1]), 0) * 99 / 1000, abs=0.1), found[0]
    # Every task the timed workers ran wrote its line: per pool and pair, a warm-up round and
    # the measured ones, each a gate, the tasks and a marker after every `every` of them
    # (as many markers per batch in the second pass: every 2 of 8).
    for text, count, step in ((noop, tasks, every), (work, work_tasks, 2)):
        lines = 2 * pairs * (rounds + 1) * (1 + count + count // step)
        assert f"Timed lines written by the workers: {lines} " in text, text
