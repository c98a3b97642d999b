"""Running rabbitmq/monitor_user.py (the compose service ``rabbitmq-setup``) as a process, as compose does."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "rabbitmq" / "monitor_user.py"


def run_setup(environment: Mapping[str, str], timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """The script with ``environment`` (and none of the caller's ``RABBITMQ_*``), run to its end."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("RABBITMQ_")}
    env.update(environment)
    return subprocess.run([sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=timeout)
