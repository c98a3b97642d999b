"""The monitor benchmark runs end to end at small sizes (the figures themselves live in the benchmark)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.redis]

REPO = Path(__file__).resolve().parents[1]


def test_the_benchmark_runs_and_reports_its_targets() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.monitor", "--queues", "1,3", "--big", "5000", "--repeat", "2"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    output = done.stdout
    assert re.search(r"^PING round trip: \d+ µs", output, re.M)
    assert re.search(r"^1 queue x 5,000 jobs\s+1\s+22\s+19\.0\s+3\s", output, re.M), output
    assert "commands per queue constant in queue length: met" in output
    assert "round trips per sample <= 3: met (max 3)" in output
