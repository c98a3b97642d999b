"""A real Prometheus server on a free loopback port with a temporary config and data folder."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from tests.support.metrics import free_port


def binary(name: str) -> str:
    """The path of ``prometheus`` or ``promtool``; a missing one fails the test that needs it."""
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"{name} is not installed (Debian: apt-get install prometheus; .ci/run does it)")
    return path


class PrometheusServer:
    """``prometheus`` scraping ``targets`` every ``interval`` with ``rule_files``; ``stop()`` ends it."""

    def __init__(self, job: str, targets: list[str], rule_files: list[Path] = (), interval: str = "1s") -> None:  # type: ignore[assignment]
        self.folder = Path(tempfile.mkdtemp(prefix="rq-task-time-prometheus-"))
        rules = []
        for number, path in enumerate(rule_files):
            copy = self.folder / f"rules-{number}.yml"
            shutil.copyfile(path, copy)
            rules.append(str(copy))
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": rules,
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": targets}]}],
        }
        (self.folder / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(self.folder / "prometheus.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                binary("prometheus"),
                f"--config.file={self.folder / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.folder / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                output = (self.folder / "prometheus.log").read_text(errors="replace")[-2000:]
                self.stop()
                raise RuntimeError(f"prometheus did not start on port {self.port}: {output}")
            time.sleep(0.2)

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a Prometheus HTTP API answer (``/api/v1/<path>``)."""
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}?{query}", timeout=10) as answer:
            body = json.loads(answer.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector of ``promql``."""
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return data["result"]  # type: ignore[no-any-return]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)
