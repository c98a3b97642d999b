"""The Celery queue monitor in docker-compose.yml's ``celery`` profile, loaded with compose-go
(see tests/test_compose.py): ``celery-monitor`` reads RabbitMQ as the monitoring-only user that
the one-shot ``rabbitmq-setup`` creates, and writes where Logstash reads.

tests/test_rabbitmq_setup.py runs both services' environments against a real RabbitMQ node.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from pipeline import settings
from pipeline.monitor import options as monitor_options
from tests.support.monitor import CONFIG
from tests.test_compose import (  # noqa: F401  (project and celery_project are the compose-go fixtures)
    assert_logstash_reads,
    celery_project,
    env_file,
    project,
    volume_at,
)

REPO = Path(__file__).resolve().parents[1]
SETUP, MONITOR = "rabbitmq-setup", "celery-monitor"
SCRIPT = REPO / "rabbitmq" / "monitor_user.py"


def conditions(service: dict[str, Any]) -> dict[str, str]:
    return {name: spec["condition"] for name, spec in service.get("depends_on", {}).items()}


@pytest.mark.compose
def test_only_the_celery_profile_adds_the_celery_monitor_and_its_setup(
    project: dict[str, Any],  # noqa: F811
    celery_project: dict[str, Any],  # noqa: F811
) -> None:
    assert not {SETUP, MONITOR} & set(project["services"])
    services = celery_project["services"]
    for name in (SETUP, MONITOR):
        assert services[name]["profiles"] == ["celery"], name
        assert services[name]["image"] == services["monitor"]["image"], name  # the app image, its build
        assert set(services[name]["networks"]) == {"queue"}, name  # RabbitMQ's network, not the Elastic stack's
    assert services[MONITOR]["command"] == services["monitor"]["command"] == ["python", "-m", "pipeline.monitor"]


@pytest.mark.compose
def test_the_celery_monitor_reads_rabbitmq_as_the_monitoring_only_user(celery_project: dict[str, Any]) -> None:  # noqa: F811
    services, env = celery_project["services"], env_file()
    setup, environment = services[SETUP]["environment"], services[MONITOR]["environment"]
    user, password = setup["RABBITMQ_MONITOR_USER"], env["RABBITMQ_MONITOR_PASSWORD"]
    assert setup["RABBITMQ_MONITOR_PASSWORD"] == password
    assert user != env["RABBITMQ_USER"] and password != env["RABBITMQ_PASSWORD"]
    assert password.isalnum(), "it goes into a URL unescaped"
    assert environment[settings.CELERY_BROKER.variable] == f"amqp://{user}:{password}@rabbitmq:5672//"
    assert environment[settings.RABBITMQ_API.variable] == f"http://{user}:{password}@rabbitmq:15672"
    # Nothing of the administrator's reaches the monitor.
    assert not any(env["RABBITMQ_PASSWORD"] in str(value) for value in environment.values())
    assert not any(f"{env['RABBITMQ_USER']}:" in str(value) for value in environment.values())
    # How the monitor reads that environment: Celery on RabbitMQ alone (no RQ_REDIS_URL), vhost /.
    assert settings.REDIS_URL.variable not in environment
    config = monitor_options.parse_args([], {key: str(value) for key, value in environment.items()})
    assert config.url is None and config.celery is not None and config.celery.broker == "rabbitmq"
    assert config.celery.api is not None
    assert (config.celery.api.base, config.celery.api.vhost) == ("http://rabbitmq:15672", "/")
    assert (config.celery.api.username, config.celery.api.password) == (user, password)
    assert config.celery.queues is None  # every queue of the vhost
    name = environment[settings.MONITOR_NAME.variable]
    assert config.name == name and name != services["monitor"]["environment"][settings.MONITOR_NAME.variable]


@pytest.mark.compose
def test_the_setup_service_creates_that_user_as_the_administrator_before_the_monitor_starts(
    celery_project: dict[str, Any],  # noqa: F811
) -> None:
    services = celery_project["services"]
    setup, rabbitmq = services[SETUP], services["rabbitmq"]
    mount = volume_at(setup, setup["command"][-1])
    assert mount["type"] == "bind" and mount["source"] == str(SCRIPT) and mount.get("read_only")
    assert setup["command"] == ["python", mount["target"]]
    assert setup["environment"]["RABBITMQ_API"] == "http://rabbitmq:15672"
    assert setup["environment"]["RABBITMQ_USER"] == rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"]
    assert setup["environment"]["RABBITMQ_PASSWORD"] == rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"]
    assert setup["restart"] == "no"
    assert conditions(setup) == {"rabbitmq": "service_healthy"}
    assert conditions(services[MONITOR]) == {
        "rabbitmq": "service_healthy",
        SETUP: "service_completed_successfully",
    }
    assert not [name for name, service in services.items() if SETUP in conditions(service) and name != MONITOR]
    assert rabbitmq["healthcheck"]["test"]


@pytest.mark.compose
def test_the_celery_monitor_writes_where_logstash_reads_beside_the_rq_monitor(
    celery_project: dict[str, Any],  # noqa: F811
) -> None:
    services = celery_project["services"]
    monitor, shipper = assert_logstash_reads(
        services, MONITOR, settings.MONITOR_LOG.variable, settings.MONITOR_LOG.default, CONFIG
    )
    variable = settings.MONITOR_LOG.variable
    assert monitor["environment"][variable] == services["monitor"]["environment"][variable]  # one log, two monitors
    assert monitor["environment"]["TASK_TIME_TZ"] == shipper["environment"]["TASK_TIME_TZ"]
    assert monitor["environment"][settings.MONITOR_INTERVAL.variable] == "15"


@pytest.mark.compose
def test_its_healthcheck_is_the_check_and_tolerates_warn(celery_project: dict[str, Any]) -> None:  # noqa: F811
    services = celery_project["services"]
    monitor = services[MONITOR]
    assert monitor["healthcheck"] == services["monitor"]["healthcheck"]
    [kind, script] = monitor["healthcheck"]["test"]
    assert kind == "CMD-SHELL" and "python -m pipeline.monitor --check" in script
    assert monitor["restart"] == "unless-stopped"
    shell = script.replace("$$", "$").replace("python -m pipeline.monitor --check", "exit_with")
    for code, healthy in ((0, True), (1, True), (2, False)):
        done = subprocess.run(["sh", "-c", f"exit_with() {{ return {code}; }}; {shell}"], capture_output=True)
        assert (done.returncode == 0) == healthy, (code, done)


@pytest.mark.compose
def test_nothing_new_is_published_on_the_host(
    project: dict[str, Any],  # noqa: F811
    celery_project: dict[str, Any],  # noqa: F811
) -> None:
    published = {name for name, service in celery_project["services"].items() if service.get("ports")}
    assert published == {name for name, service in project["services"].items() if service.get("ports")}
    assert published == {"elasticsearch", "kibana"}
    for name in (SETUP, MONITOR):
        assert not celery_project["services"][name].get("ports"), name
    monitor = celery_project["services"][MONITOR]
    environment = monitor["environment"]
    # The metrics endpoint, like the RQ monitor's: exposed on the queue network, never published.
    assert [str(port) for port in monitor["expose"]] == [environment[settings.METRICS_PORT.variable]]
    assert environment[settings.METRICS_HOST.variable] == "0.0.0.0"


@pytest.mark.unit
def test_the_env_file_holds_the_monitors_rabbitmq_password_and_the_docs_name_every_variable() -> None:
    env = env_file()
    assert env["RABBITMQ_MONITOR_PASSWORD"].isalnum()
    assert len({env["RABBITMQ_MONITOR_PASSWORD"], env["RABBITMQ_PASSWORD"], env["REDIS_MONITOR_PASSWORD"]}) == 3
    configuration = (REPO / "docs" / "configuration.md").read_text()
    for variable in env:
        assert f"`{variable}`" in configuration, f"{variable} (.env) is not on docs/configuration.md"
