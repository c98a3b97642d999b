"""docker-compose.yml, checked without a Docker engine.

``tests/composecheck`` loads the project with compose-go, the library Docker Compose
uses: .env interpolation, the Compose Specification schema and its consistency checks.
The tests then cross-check the resolved project against the rest of the repository.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import elasticsearch as es_client
import pytest
import yaml
from rq.utils import import_attribute

from harness.es_cluster import stack_version
from pipeline import settings
from pipeline.cli import chosen_classes, worker_defaults
from pipeline.job import TimedJob
from pipeline.worker import TimedWorker
from tests.support import logstash

pytestmark = [pytest.mark.compose]

REPO = Path(__file__).resolve().parents[1]


def load_project(*profiles: str) -> dict[str, Any]:
    """The project as compose-go resolves it, with the services of ``profiles`` enabled."""
    done = subprocess.run(
        ["go", "run", ".", str(REPO), ",".join(profiles)],
        cwd=REPO / "tests" / "composecheck",
        capture_output=True,
        text=True,
        timeout=900,
        env={"PATH": "/usr/local/go/bin:/usr/bin:/bin", "HOME": str(Path.home()), "GOFLAGS": "-mod=readonly"},
    )
    assert done.returncode == 0, done.stderr
    # Every variable the file uses must come from .env: compose-go warns about the rest.
    assert "is not set" not in done.stderr, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    return load_project()


@pytest.fixture(scope="module")
def celery_project() -> dict[str, Any]:
    return load_project("celery")


def env_file() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (REPO / ".env").read_text().splitlines() if "=" in line)
    return {key.strip(): value.strip() for key, value in pairs if not key.startswith("#")}


def test_every_bind_mount_exists_in_the_repository(project: dict[str, Any], celery_project: dict[str, Any]) -> None:
    for name, service in {**project["services"], **celery_project["services"]}.items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert Path(volume["source"]).exists(), f"{name}: {volume['source']}"
                assert volume.get("read_only"), f"{name} mounts {volume['source']} writable"
        if "build" in service:
            assert (Path(service["build"]["context"]) / service["build"]["dockerfile"]).exists()


def test_one_stack_version_everywhere(project: dict[str, Any]) -> None:
    version = stack_version()
    images = {name: s["image"] for name, s in project["services"].items() if "elastic.co" in s["image"]}
    assert set(images) == {"elasticsearch", "kibana", "logstash"}
    for image in images.values():
        assert image.endswith(f":{version}")
    raw = (REPO / "docker-compose.yml").read_text()
    assert raw.count(":${ELASTIC_VERSION}") == 3, "images take the version from .env, not a literal"
    assert version.split(".")[0] == es_client.__versionstr__.split(".")[0], "client major = stack major"
    requirement = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert f"elasticsearch>={version.split('.')[0]},<{int(version.split('.')[0]) + 1}" in requirement


def volume_at(service: dict[str, Any], target: str) -> dict[str, Any]:
    """The one volume of ``service`` mounted at ``target``."""
    [volume] = [v for v in service.get("volumes", []) if v["target"] == target]
    return volume


def assert_logstash_reads(
    services: dict[str, Any], writer: str, variable: str, path: str, config: Path = logstash.CONFIG
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``writer`` writes its log at ``path`` (its ``variable``) on a volume Logstash mounts read-only,
    where the file input of ``config`` finds it. Returns the two services."""
    service, shipper = services[writer], services["logstash"]
    assert service["environment"][variable] == path
    folder = str(Path(path).parent)
    written, read = volume_at(service, folder), volume_at(shipper, folder)
    assert written["type"] == read["type"] == "volume" and written["source"] == read["source"]
    assert read.get("read_only") and not written.get("read_only")
    [file_input] = logstash.plugins(logstash.load(config)["input"], "file")
    patterns = [logstash.substitute(p, shipper["environment"]) for p in file_input.options["path"]]
    assert any(Path(path).match(pattern) for pattern in patterns)
    return service, shipper


def test_workers_write_where_logstash_reads(project: dict[str, Any]) -> None:
    worker, shipper = assert_logstash_reads(project["services"], "worker", "TASK_TIME_LOG", settings.TASK_LOG.default)
    dockerfile = (REPO / "worker" / "Dockerfile").read_text()
    assert f"TASK_TIME_LOG={settings.TASK_LOG.default}" in dockerfile
    assert worker["environment"]["TASK_TIME_TZ"] == shipper["environment"]["TASK_TIME_TZ"] == env_file()["TASK_TIME_TZ"]


def test_logstash_config_and_state_live_where_the_image_expects(project: dict[str, Any]) -> None:
    shipper = project["services"]["logstash"]
    assert volume_at(shipper, "/usr/share/logstash/pipeline")["source"] == str(REPO / "logstash" / "pipeline")
    assert volume_at(shipper, "/usr/share/logstash/config/logstash.yml")["source"] == str(
        REPO / "logstash" / "config" / "logstash.yml"
    )
    data = volume_at(shipper, "/usr/share/logstash/data")
    assert data["type"] == "volume"  # persisted queue, dead letter queue and sincedb survive restarts
    [file_input] = logstash.plugins(logstash.load()["input"], "file")
    assert file_input.options["sincedb_path"].startswith("/usr/share/logstash/data/")
    # The image rewrites logstash.yml from matching environment variables; mounted read-only
    # that would abort start-up, so no service variable may look like a setting.
    settings = {
        re.sub(r"[._]", "", key).lower()
        for key in yaml.safe_load((REPO / "logstash" / "config" / "logstash.yml").read_text())
    }
    for variable in shipper["environment"]:
        assert re.sub(r"[._]", "", variable).lower() not in settings | {"xpackmonitoringenabled", "queuetype"}


def test_bootstrap_settings_match_the_services(project: dict[str, Any]) -> None:
    services = project["services"]
    bootstrap = services["bootstrap"]["environment"]
    kibana_setup = services["kibana-setup"]["environment"]
    env = env_file()
    assert bootstrap["ES_URL"] == "http://elasticsearch:9200"
    assert kibana_setup["KIBANA_URL"] == "http://kibana:5601"
    assert bootstrap["ES_USERNAME"] == kibana_setup["ES_USERNAME"] == "elastic"
    assert (
        bootstrap["ES_PASSWORD"]
        == kibana_setup["ES_PASSWORD"]
        == services["elasticsearch"]["environment"]["ELASTIC_PASSWORD"]
        == env["ELASTIC_PASSWORD"]
    )
    assert bootstrap["KIBANA_SYSTEM_PASSWORD"] == services["kibana"]["environment"]["KIBANA_SYSTEM_PASSWORD"]
    assert bootstrap["LOGSTASH_WRITER_PASSWORD"] == services["logstash"]["environment"]["LOGSTASH_WRITER_PASSWORD"]
    assert bootstrap["KIBANA_VIEWER_PASSWORD"] == env["KIBANA_VIEWER_PASSWORD"]  # documented in .env, off by default
    assert services["logstash"]["environment"]["ES_HOSTS"] == bootstrap["ES_URL"]
    writer = services["logstash"]["environment"]["LOGSTASH_WRITER_USER"]
    user_file = REPO / "elasticsearch" / "users" / f"{writer}.json"
    assert json.loads(user_file.read_text())["metadata"]["password_from"] == "LOGSTASH_WRITER_PASSWORD"
    viewer = json.loads((REPO / "elasticsearch" / "users" / "task_time_viewer.json").read_text())
    assert viewer["metadata"]["password_from"] == "KIBANA_VIEWER_PASSWORD"
    kibana_yml = yaml.safe_load((REPO / "kibana" / "config" / "kibana.yml").read_text())
    assert kibana_yml["elasticsearch.hosts"] == [bootstrap["ES_URL"]]
    assert kibana_yml["elasticsearch.username"] == "kibana_system"  # Kibana refuses the superuser
    assert kibana_yml["elasticsearch.password"] == "${KIBANA_SYSTEM_PASSWORD}"
    assert len(env["KIBANA_ENCRYPTION_KEY"]) >= 32
    assert services["bootstrap"]["command"] == ["python", "-m", "pipeline.bootstrap", "--skip-kibana"]
    assert services["kibana-setup"]["command"] == ["python", "-m", "pipeline.bootstrap", "--kibana-only"]
    assert not any(key.startswith(("LOGSTASH_", "KIBANA_SYSTEM", "KIBANA_VIEWER")) for key in kibana_setup)
    assert "TASK_TIME_ASSETS" not in (REPO / "worker" / "Dockerfile").read_text()  # the package carries them


def test_start_order_converges_without_a_manual_step(project: dict[str, Any]) -> None:
    services = project["services"]
    conditions = {
        name: {dep: spec["condition"] for dep, spec in s.get("depends_on", {}).items()} for name, s in services.items()
    }
    assert conditions["bootstrap"] == {"elasticsearch": "service_healthy"}
    # Ingestion waits for the Elasticsearch setup (bootstrap) only, never for Kibana or its saved objects.
    assert conditions["logstash"] == {"bootstrap": "service_completed_successfully"}
    assert conditions["kibana"] == {"bootstrap": "service_completed_successfully"}  # its password is set there
    assert conditions["kibana-setup"] == {"bootstrap": "service_completed_successfully", "kibana": "service_started"}
    assert not [name for name, deps in conditions.items() if "kibana-setup" in deps]  # nothing waits on it
    assert conditions["worker"] == conditions["producer"] == {"redis": "service_healthy"}

    def waits_for(name: str) -> set[str]:
        found = set(conditions[name])
        for dependency in conditions[name]:
            found |= waits_for(dependency)
        return found

    assert "kibana" not in waits_for("logstash") and "kibana-setup" not in waits_for("logstash")
    for dependencies in conditions.values():
        for dependency, condition in dependencies.items():
            if condition == "service_healthy":
                assert services[dependency].get("healthcheck", {}).get("test"), f"{dependency} needs a healthcheck"
    assert services["bootstrap"]["restart"] == services["kibana-setup"]["restart"] == "no"


def test_security_is_on_and_nothing_is_open_beyond_this_machine(project: dict[str, Any]) -> None:
    config = yaml.safe_load((REPO / "elasticsearch" / "config" / "elasticsearch.yml").read_text())
    assert config["xpack.security.enabled"] is True
    assert not any("anonymous" in key for key in config)
    for name, service in project["services"].items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond localhost"
        for key, value in service.get("environment", {}).items():
            assert not (key.startswith("xpack.security") and str(value).lower() == "false"), name
    assert {name for name, s in project["services"].items() if s.get("ports")} == {"elasticsearch", "kibana"}


def test_workers_run_the_timed_classes(project: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    worker = project["services"]["worker"]
    dockerfile = (REPO / "worker" / "Dockerfile").read_text()
    command = worker.get("command") or json.loads(re.search(r"^CMD (.+)$", dockerfile, re.M).group(1))
    assert command[0] == "rq-task-time-worker"
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["rq-task-time-worker"] == "pipeline.cli:main"
    # The classes the worker service's command line and environment really make rq use.
    for name in [name for name in os.environ if name.startswith("RQ_")]:
        monkeypatch.delenv(name)
    for key, value in worker.get("environment", {}).items():
        monkeypatch.setenv(key, str(value))
    chosen = chosen_classes(command[1:], worker_defaults())
    assert issubclass(import_attribute(chosen["worker"]), TimedWorker)
    assert issubclass(import_attribute(chosen["job"]), TimedJob)
    assert worker["environment"]["RQ_REDIS_URL"].endswith("@redis:6379/0")
    assert worker["deploy"]["replicas"] >= 1


def test_task_code_cannot_reach_the_elastic_stack(project: dict[str, Any]) -> None:
    networks = {name: set(service["networks"]) for name, service in project["services"].items()}
    for name in ("redis", "worker", "producer"):
        assert networks[name] == {"queue"}, name
    for name in ("elasticsearch", "kibana", "logstash", "bootstrap", "kibana-setup"):
        assert networks[name] == {"elastic"}, name


def test_redis_asks_for_the_password_the_workers_use(project: dict[str, Any]) -> None:
    services = project["services"]
    password = env_file()["REDIS_PASSWORD"]
    command = services["redis"]["command"]
    assert command[command.index("--requirepass") + 1] == password
    for name in ("worker", "producer"):
        assert services[name]["environment"]["RQ_REDIS_URL"] == f"redis://:{password}@redis:6379/0"
    assert password.isalnum(), "it goes into a URL unescaped"


CELERY_SERVICES = {"rabbitmq", "celery-worker", "celery-producer", "rabbitmq-setup", "celery-monitor"}


def test_plain_up_is_unchanged_and_the_celery_profile_adds_rabbitmq_workers_producer_and_monitor(
    project: dict[str, Any], celery_project: dict[str, Any]
) -> None:
    plain = set(project["services"])
    assert not plain & CELERY_SERVICES
    assert set(celery_project["services"]) == plain | CELERY_SERVICES
    for name in CELERY_SERVICES:
        service = celery_project["services"][name]
        assert service["profiles"] == ["celery"], name
        assert set(service["networks"]) == {"queue"}, name  # task code cannot reach the Elastic stack
        assert not service.get("ports"), name
    for name in plain:
        assert celery_project["services"][name] == project["services"][name], name


def test_rabbitmq_takes_its_credentials_from_env_and_the_celery_services_use_them(
    celery_project: dict[str, Any],
) -> None:
    services, env = celery_project["services"], env_file()
    rabbitmq = services["rabbitmq"]
    assert rabbitmq["image"] == "rabbitmq:3-management"
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"] == env["RABBITMQ_USER"]
    assert rabbitmq["environment"]["RABBITMQ_DEFAULT_PASS"] == env["RABBITMQ_PASSWORD"]
    assert env["RABBITMQ_USER"].isalnum() and env["RABBITMQ_PASSWORD"].isalnum(), "they go into a URL unescaped"
    url = f"amqp://{env['RABBITMQ_USER']}:{env['RABBITMQ_PASSWORD']}@rabbitmq:5672//"
    for name in ("celery-worker", "celery-producer"):
        assert services[name]["environment"]["CELERY_BROKER_URL"] == url, name
        assert {dep: spec["condition"] for dep, spec in services[name]["depends_on"].items()} == {
            "rabbitmq": "service_healthy"
        }
    assert rabbitmq["healthcheck"]["test"]


def test_the_celery_worker_is_instrumented_and_writes_where_logstash_reads(celery_project: dict[str, Any]) -> None:
    services = celery_project["services"]
    worker, shipper = assert_logstash_reads(services, "celery-worker", "TASK_TIME_LOG", settings.TASK_LOG.default)
    assert worker["environment"]["TASK_TIME_TZ"] == shipper["environment"]["TASK_TIME_TZ"]
    assert worker["command"][:4] == ["celery", "-A", "celery_jobs", "worker"]
    assert services["celery-producer"]["command"] == ["python", "celery_jobs.py"]
    assert worker["image"] == services["worker"]["image"]  # the same image, built with the celery extra
    dockerfile = (REPO / "worker" / "Dockerfile").read_text()
    assert "celery" in image_extras(dockerfile) and "worker/celery_jobs.py" in dockerfile
    source = (REPO / "worker" / "celery_jobs.py").read_text()
    assert "pipeline.celery.install(app)" in source  # in the module that creates the app


def image_extras(dockerfile: str) -> set[str]:
    """The extras the worker image installs the package with (``pip install '.[a,b]'``)."""
    [extras] = re.findall(r"pip install ['\"]\.\[([a-z,]+)\]['\"]", dockerfile)
    return set(extras.split(","))
