"""The requests bootstrap sends to a full Elasticsearch's ILM and security APIs, and settings it refuses.

The integ-test Elasticsearch has neither ILM nor a working native realm (it lacks the
x-pack-ilm and analysis-common modules). These tests check the *requests* bootstrap sends
for those paths against a loopback server that records them; they do not claim that a
full Elasticsearch accepts them (the README says what is verified how).
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.bootstrap.assets import digest, load_elasticsearch_assets
from pipeline.bootstrap.install import body_with_marker
from tests.conftest import ElasticsearchTarget
from tests.support.recording_kibana import run_bootstrap
from tests.support.recording_server import Reply, Request, recording_server, reply_json

REPO = Path(__file__).resolve().parents[1]

ASSETS = {(a.kind, a.name): a for a in load_elasticsearch_assets(REPO)}
PRODUCT = {"X-Elastic-Product": "Elasticsearch"}


def full_elasticsearch(users: dict[str, str]) -> Callable[[Request], Reply]:
    """A recording stand-in for a full cluster: ILM present, nothing of ours installed yet.

    ``users`` maps usernames to the password that authenticates them.
    """

    def respond(request: Request) -> Reply:
        path = request.path
        if path == "/_cluster/health":
            return reply_json(200, {"status": "green"}, PRODUCT)
        if path == "/_nodes/_local":
            return reply_json(200, {"nodes": {"n1": {"version": "9.5.4"}}}, PRODUCT)
        if path == "/_ilm/status":
            return reply_json(200, {"operation_mode": "RUNNING"}, PRODUCT)
        if path == "/_security/_authenticate":
            user, _, password = base64.b64decode(request.headers["authorization"].split()[1]).decode().partition(":")
            if users.get(user) == password:
                return reply_json(200, {"username": user}, PRODUCT)
            return reply_json(
                401, {"error": {"type": "security_exception", "reason": "unable to authenticate"}}, PRODUCT
            )
        if request.method == "GET":
            return reply_json(404, {"error": {"type": "resource_not_found_exception", "reason": "missing"}}, PRODUCT)
        return reply_json(200, {"acknowledged": True}, PRODUCT)

    return respond


@pytest.mark.unit
def test_full_cluster_gets_retention_users_and_templates_in_order(tmp_path: Path) -> None:
    with recording_server(full_elasticsearch({"elastic": "admin-pass"})) as (url, requests):
        env = {
            "PATH": "/usr/bin:/bin",
            "ES_URL": url,
            "ES_PASSWORD": "admin-pass",
            "LOGSTASH_WRITER_PASSWORD": "writer-pass",
            "KIBANA_SYSTEM_PASSWORD": "kibana-pass",
            "KIBANA_VIEWER_PASSWORD": "viewer-pass",
        }
        done = run_bootstrap(env, "--skip-kibana")
    assert done.returncode == 0, done.stderr
    writes = [(r.method, r.path) for r in requests if r.method in ("PUT", "POST")]
    assert writes == [
        ("PUT", "/_security/role/task_time_logstash_writer"),
        ("PUT", "/_security/role/task_time_viewer"),
        ("PUT", "/_security/user/task_time_logstash"),
        ("PUT", "/_security/user/task_time_viewer"),
        ("PUT", "/_security/user/kibana_system/_password"),
        ("PUT", "/_ilm/policy/task-time"),
        ("PUT", "/_component_template/queue-monitor-mappings"),
        ("PUT", "/_component_template/task-time-mappings"),
        ("PUT", "/_component_template/task-time-retention"),
        ("PUT", "/_index_template/queue-monitor"),
        ("PUT", "/_index_template/task-time"),
    ]
    bodies = {r.path: r.json() for r in requests if r.method in ("PUT", "POST")}
    for (kind, name), asset in ASSETS.items():
        path = {
            "role": "/_security/role/{}",
            "user": "/_security/user/{}",
            "ILM policy": "/_ilm/policy/{}",
            "component template": "/_component_template/{}",
            "index template": "/_index_template/{}",
        }[kind].format(name)
        expected = body_with_marker(asset)
        if kind == "user":
            expected["password"] = {"task_time_logstash": "writer-pass", "task_time_viewer": "viewer-pass"}[name]
        assert bodies[path] == expected, path
        assert digest(asset.body) == asset.digest
    assert bodies["/_security/user/kibana_system/_password"] == {"password": "kibana-pass"}
    viewer = bodies["/_security/role/task_time_viewer"]
    assert viewer["indices"] == [{"names": ["task-time-*"], "privileges": ["read", "view_index_metadata"]}]
    assert viewer["cluster"] == []
    [kibana_privileges] = viewer["applications"]  # Kibana 9's feature privileges, read-only, default space
    assert kibana_privileges == {
        "application": "kibana-.kibana",
        "privileges": ["feature_discover_v2.read", "feature_dashboard_v2.read", "feature_visualize_v2.read"],
        "resources": ["space:default"],
    }
    assert bodies["/_security/user/task_time_viewer"]["roles"] == ["task_time_viewer"]
    assert "retention" not in done.stdout.split("ILM policy")[0]  # no "no ILM" report on a cluster with ILM
    assert "ILM policy task-time: created" in done.stdout


@pytest.mark.unit
def test_service_users_whose_passwords_work_are_left_unchanged(tmp_path: Path) -> None:
    users = {"elastic": "admin-pass", "kibana_system": "kibana-pass", "task_time_logstash": "writer-pass"}
    writer_asset = ASSETS[("user", "task_time_logstash")]
    role_asset = ASSETS[("role", "task_time_logstash_writer")]

    def respond(request: Request) -> Reply:
        if request.method == "GET" and request.path == "/_security/user/task_time_logstash":
            return reply_json(200, {"task_time_logstash": body_with_marker(writer_asset)}, PRODUCT)
        if request.method == "GET" and request.path == "/_security/role/task_time_logstash_writer":
            return reply_json(200, {"task_time_logstash_writer": body_with_marker(role_asset)}, PRODUCT)
        return full_elasticsearch(users)(request)

    with recording_server(respond) as (url, requests):
        env = {"PATH": "/usr/bin:/bin", "ES_URL": url, "ES_PASSWORD": "admin-pass"}
        env.update(LOGSTASH_WRITER_PASSWORD="writer-pass", KIBANA_SYSTEM_PASSWORD="kibana-pass")
        done = run_bootstrap(env, "--skip-kibana")
    assert done.returncode == 0, done.stderr
    security_writes = [r.path for r in requests if r.method in ("PUT", "POST") and "/_security/" in r.path]
    assert security_writes == []
    assert "user task_time_logstash: unchanged" in done.stdout
    assert "user kibana_system password: unchanged" in done.stdout
    assert "role task_time_viewer: skipped (none of its users is being created)" in done.stdout
    assert "user task_time_viewer: skipped (KIBANA_VIEWER_PASSWORD not set)" in done.stdout


@pytest.mark.unit
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ca-cert", "/nonexistent/ca.pem"], "CA certificate /nonexistent/ca.pem does not exist"),
        (
            ["--cloud-id", "deployment:abc"],
            "with --cloud-id, give --kibana-url (the deployment's Kibana endpoint) or --skip-kibana",
        ),
        (["--timeout", "soon"], "--timeout must be a number of seconds, not 'soon'"),
        (["--api-key", "k", "--password", "p"], "give a password or an API key, not both"),
        (["--kibana-url", "kibana:5601"], "--kibana-url must be an http:// or https:// URL, not 'kibana:5601'"),
        (["export", "--dry-run"], "export takes neither --skip-kibana nor --dry-run"),
    ],
)
def test_settings_no_service_could_fix_are_refused_at_once(args: list[str], message: str) -> None:
    done = run_bootstrap({"PATH": "/usr/bin:/bin"}, *args)
    assert done.returncode == 2
    assert done.stderr.strip() == f"bootstrap: error: {message}"
    assert "waiting" not in done.stdout


@pytest.mark.elasticsearch
def test_default_passwords_are_warned_about(es: ElasticsearchTarget) -> None:
    done = run_bootstrap(es.bootstrap_env(), "--skip-kibana", "--dry-run", "--kibana-system-password", "changeme-k")
    assert "security: warning: KIBANA_SYSTEM_PASSWORD: still a changeme default" in done.stdout
