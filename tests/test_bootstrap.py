"""``python -m pipeline.bootstrap`` against a real Elasticsearch (the integ-test zip, or ES_URL)."""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path

import pytest
from elasticsearch import AuthorizationException, Elasticsearch, NotFoundError

from harness.redis_server import free_port
from pipeline.bootstrap.assets import digest
from tests.conftest import ElasticsearchTarget, bootstrap
from tests.support import logstash
from tests.support.documents import golden_documents, index_documents
from tests.support.recording_kibana import run_bootstrap
from tests.support.recording_server import Reply, Request, recording_server, reply_json
from tests.test_bootstrap_requests import PRODUCT, full_elasticsearch

REPO = Path(__file__).resolve().parents[1]


def has_ilm(client: Elasticsearch) -> bool:
    return client.options(ignore_status=(400, 404, 405)).perform_request("GET", "/_ilm/status").meta.status == 200


def component(client: Elasticsearch, name: str) -> dict:
    return client.cluster.get_component_template(name=name)["component_templates"][0]["component_template"]


@pytest.mark.elasticsearch
def test_fresh_cluster_is_set_up_and_a_second_run_changes_nothing(es: ElasticsearchTarget) -> None:
    first = bootstrap(es, "--skip-kibana")
    assert first.returncode == 0, first.stderr
    assert "component template task-time-mappings: created (v2)" in first.stdout
    assert "index template task-time: created (v1)" in first.stdout
    client = es.client()
    template = client.indices.get_index_template(name="task-time")["index_templates"][0]["index_template"]
    source = json.loads((REPO / "elasticsearch" / "index-templates" / "task-time.json").read_text())
    assert template["index_patterns"] == source["index_patterns"]
    assert template["_meta"]["digest"] == digest(source)
    assert component(client, "task-time-mappings")["version"] == 2

    second = bootstrap(es, "--skip-kibana")
    assert second.returncode == 0, second.stderr
    assert "bootstrap: done: nothing changed" in second.stdout
    assert " created" not in second.stdout and " updated" not in second.stdout


@pytest.mark.elasticsearch
def test_dry_run_reports_and_changes_nothing(es: ElasticsearchTarget) -> None:
    done = bootstrap(es, "--skip-kibana", "--dry-run")
    assert done.returncode == 0, done.stderr
    assert "index template task-time: would be created (v1)" in done.stdout
    assert "dry run: 4 change(s) would be made" in done.stdout  # task-time and queue-monitor templates
    with pytest.raises(NotFoundError):
        es.client().indices.get_index_template(name="task-time")


@pytest.mark.elasticsearch
def test_an_older_template_version_is_upgraded_and_a_newer_one_left_alone(es: ElasticsearchTarget) -> None:
    client = es.client()
    old = json.loads((REPO / "elasticsearch" / "component-templates" / "task-time-mappings.json").read_text())
    old["version"] = 0
    del old["template"]["mappings"]["properties"]["wait_time"]
    client.cluster.put_component_template(name="task-time-mappings", template=old["template"], version=0)
    upgraded = bootstrap(es, "--skip-kibana")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "component template task-time-mappings: updated (v0 -> v2)" in upgraded.stdout
    installed = component(client, "task-time-mappings")
    assert installed["version"] == 2
    assert installed["template"]["mappings"]["properties"]["wait_time"] == {"type": "double"}

    client.cluster.put_component_template(name="task-time-mappings", template=old["template"], version=7)
    newer = bootstrap(es, "--skip-kibana")
    assert newer.returncode == 0, newer.stderr
    assert "task-time-mappings: skipped (installed v7 is newer than this bootstrap's v2)" in newer.stdout
    assert component(client, "task-time-mappings")["version"] == 7


@contextmanager
def without_ilm(target: ElasticsearchTarget) -> Iterator[str]:
    """The cluster as one without the ILM module: ``/_ilm/`` answered as the test distribution answers it.

    Every other request goes to the real cluster and its answer comes back unchanged.
    """

    def respond(request: Request) -> Reply:
        if request.path.startswith("/_ilm/"):
            reason = f"no handler found for uri [{request.path}] and method [{request.method}]"
            return reply_json(400, {"error": reason}, {"X-Elastic-Product": "Elasticsearch"})
        query = "&".join(f"{k}={v}" for k, values in request.query.items() for v in values)
        forwarded = urllib.request.Request(
            f"{target.url}{request.path}{'?' + query if query else ''}",
            data=request.body or None,
            method=request.method,
            headers={k: v for k, v in request.headers.items() if k not in ("host", "content-length")},
        )
        try:
            with urllib.request.urlopen(forwarded, timeout=60) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    with recording_server(respond) as (url, _):
        yield url


@pytest.mark.elasticsearch
def test_retention_without_ilm_is_reported_and_the_index_template_still_applies(es: ElasticsearchTarget) -> None:
    client = es.client()
    if es.cluster is not None:  # what without_ilm stands for: the test distribution's own answer
        assert not has_ilm(client)
    with without_ilm(es) as url:
        done = bootstrap(es, "--skip-kibana", ES_URL=url)
    assert done.returncode == 0, done.stderr
    assert "retention: this cluster has no index lifecycle management (ILM)" in done.stdout
    assert "ILM policy task-time: skipped (needs ILM)" in done.stdout
    assert "component template task-time-retention: skipped (needs ILM)" in done.stdout
    # The index template still applies: it was told the retention part may be missing.
    client.indices.create(index="task-time-2026.01.01")
    mapping = client.indices.get_mapping(index="task-time-2026.01.01")["task-time-2026.01.01"]["mappings"]
    assert mapping["properties"]["task_time"] == {"type": "double"}
    settings = client.indices.get_settings(index="task-time-2026.01.01")["task-time-2026.01.01"]["settings"]
    assert "lifecycle" not in settings["index"]


@pytest.mark.unit
def test_retention_with_ilm_puts_every_daily_index_under_the_policy() -> None:
    """Against a recording full cluster (the test distribution has no ILM): the policy, then the
    settings that name it, composed into the template every task-time index gets."""
    with recording_server(full_elasticsearch({"elastic": "admin-pass"})) as (url, requests):
        done = run_bootstrap({"PATH": "/usr/bin:/bin", "ES_URL": url, "ES_PASSWORD": "admin-pass"}, "--skip-kibana")
    assert done.returncode == 0, done.stderr
    assert "ILM policy task-time: created" in done.stdout and "no index lifecycle" not in done.stdout
    puts = {r.path: r.json() for r in requests if r.method == "PUT"}
    [policy] = [path.rsplit("/", 1)[1] for path in puts if path.startswith("/_ilm/policy/")]
    retention = puts["/_component_template/task-time-retention"]["template"]["settings"]
    assert retention["index"]["lifecycle"]["name"] == policy
    template = puts["/_index_template/task-time"]
    assert "task-time-retention" in template["composed_of"]
    for index in ("task-time-2026.11.22", "task-time-unparsed-2026.11.22"):
        assert any(fnmatch(index, pattern) for pattern in template["index_patterns"])
    phases = puts[f"/_ilm/policy/{policy}"]["policy"]["phases"]
    assert "delete" in phases and phases["delete"]["actions"] == {"delete": {}}


@pytest.mark.elasticsearch
def test_documents_shaped_like_parsed_lines_get_the_intended_types(es: ElasticsearchTarget) -> None:
    assert bootstrap(es, "--skip-kibana").returncode == 0
    client = es.client()
    index_documents(client, golden_documents())
    mappings = client.indices.get_mapping(index="task-time-*")
    parsed = mappings["task-time-2026.11.21"]["mappings"]["properties"]
    assert parsed["task_name"]["type"] == "keyword"
    assert parsed["task_time"]["type"] == "double"
    assert parsed["wait_time"]["type"] == "double"
    assert parsed["@timestamp"]["type"] == "date"
    for keyword in ("queue", "status", "job_id", "worker", "system", "tags"):
        assert parsed[keyword]["type"] == "keyword"
    assert parsed["message"]["type"] == "text"
    assert parsed["host"]["properties"]["name"]["type"] == "keyword"
    assert parsed["log"]["properties"]["file"]["properties"]["path"]["type"] == "keyword"
    unparsed = [name for name in mappings if name.startswith("task-time-unparsed-")]
    assert unparsed and mappings[unparsed[0]]["mappings"]["properties"]["tags"]["type"] == "keyword"
    # Numbers come back as numbers: a range query on seconds works.
    hits = client.search(index="task-time-2*", query={"range": {"task_time": {"gte": 60}}})["hits"]["hits"]
    assert sorted(hit["_source"]["task_time"] for hit in hits) == [61.0, 12345.678901]


@pytest.mark.elasticsearch
def test_wrong_credentials_are_one_line_and_exit_4(es: ElasticsearchTarget) -> None:
    done = bootstrap(es, "--skip-kibana", ES_PASSWORD="not-the-password")
    assert done.returncode == 4
    assert done.stderr.strip().splitlines() == [
        "bootstrap: error: elasticsearch: authentication failed (401) while waiting for the cluster: "
        "check the username/password or API key"
    ]


@pytest.mark.elasticsearch
def test_unreachable_elasticsearch_times_out_with_exit_3(es: ElasticsearchTarget) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = bootstrap(es, "--skip-kibana", "--timeout", "3", ES_URL=url)
    assert done.returncode == 3
    [error] = done.stderr.strip().splitlines()
    assert error.startswith(f"bootstrap: error: elasticsearch: not ready at {url} after 3s")
    assert f"waiting for {url}" in done.stdout  # progress was visible while waiting


@pytest.mark.elasticsearch
def test_a_template_elasticsearch_rejects_names_its_file_and_reason(es: ElasticsearchTarget, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    shutil.copytree(REPO / "kibana", assets / "kibana")
    broken = assets / "elasticsearch" / "component-templates" / "task-time-mappings.json"
    content = json.loads(broken.read_text())
    content["template"]["mappings"]["properties"]["task_time"]["type"] = "seconds"
    broken.write_text(json.dumps(content))
    done = bootstrap(es, "--skip-kibana", "--assets", str(assets))
    assert done.returncode == 1
    [error] = done.stderr.strip().splitlines()
    assert "rejected component template task-time-mappings from component-templates/task-time-mappings.json" in error
    assert (
        "mapper_parsing_exception: Failed to parse mapping: The mapper type [seconds] declared on field [task_time] "
        "does not exist. It might have been created within a future version or requires a plugin to be installed. "
        "Check the documentation." in error
    )
    assert error.endswith("; fix the file and run bootstrap again to install the rest")


@pytest.mark.elasticsearch
def test_a_rejected_index_template_says_what_is_installed_and_a_rerun_converges(
    es: ElasticsearchTarget, tmp_path: Path
) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    shutil.copytree(REPO / "kibana", assets / "kibana")
    path = assets / "elasticsearch" / "index-templates" / "task-time.json"
    good = path.read_text()
    broken = json.loads(good)
    broken["template"] = {"settings": {"index": {"number_of_shards": "many"}}}
    path.write_text(json.dumps(broken))
    done = bootstrap(es, "--skip-kibana", "--assets", str(assets))
    assert done.returncode == 1
    [error] = done.stderr.strip().splitlines()
    assert error.startswith("bootstrap: error: elasticsearch: rejected index template task-time from ")
    assert "number_of_shards" in error
    client = es.client()
    installed = re.findall(r"^elasticsearch: ((?:component|index) template \S+): created", done.stdout, re.M)
    assert "component template task-time-mappings" in installed
    assert error.endswith(
        "; installed by this run and left in place: "
        + ", ".join(installed)
        + "; fix the file and run bootstrap again to install the rest"
    )
    for what in installed:  # the message tells the truth
        kind, name = what.rsplit(" ", 1)
        if kind == "component template":
            assert component(client, name)["_meta"]["managed_by"] == "rq-task-time"
        else:
            stored = client.indices.get_index_template(name=name)["index_templates"][0]["index_template"]
            assert stored["_meta"]["managed_by"] == "rq-task-time"
    with pytest.raises(NotFoundError):
        client.indices.get_index_template(name="task-time")

    path.write_text(good)
    rerun = bootstrap(es, "--skip-kibana", "--assets", str(assets))
    assert rerun.returncode == 0, rerun.stderr
    assert "index template task-time: created (v1)" in rerun.stdout
    assert "component template task-time-mappings: unchanged (v2)" in rerun.stdout
    assert "nothing changed" in bootstrap(es, "--skip-kibana", "--assets", str(assets)).stdout


@pytest.mark.elasticsearch
def test_invalid_asset_json_is_a_usage_error(es: ElasticsearchTarget, tmp_path: Path) -> None:
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    shutil.copytree(REPO / "kibana", assets / "kibana")
    (assets / "elasticsearch" / "index-templates" / "task-time.json").write_text('{"index_patterns": [}')
    done = bootstrap(es, "--skip-kibana", "--assets", str(assets))
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "bootstrap: error: elasticsearch/index-templates/task-time.json: invalid JSON at line 1: Expecting value"
    )


@pytest.mark.elasticsearch
def test_service_users_where_the_native_realm_cannot_store_them(es: ElasticsearchTarget) -> None:
    """The native realm needs the .security index, which the integ-test zip cannot create (no
    analysis-common module): bootstrap must say so in one line. The same step on a full cluster
    is the next test's."""
    env = {"LOGSTASH_WRITER_PASSWORD": "writer-pass-1", "KIBANA_SYSTEM_PASSWORD": "kibana-pass-1"}
    client = es.client()
    modules = {m["name"] for node in client.nodes.info(metric="modules")["nodes"].values() for m in node["modules"]}
    done = bootstrap(es, "--skip-kibana", **env)
    if "analysis-common" not in modules:
        assert done.returncode == 1
        [error] = done.stderr.strip().splitlines()
        assert error.startswith("bootstrap: error: elasticsearch: rejected role task_time_logstash_writer")
        assert "native realm" in error and "analysis-common" in error
    else:  # a full cluster given by ES_URL: the users are really created
        assert done.returncode == 0, done.stderr
        assert "nothing changed" in bootstrap(es, "--skip-kibana", **env).stdout


@pytest.mark.unit
def test_service_users_on_a_full_cluster_are_created_once() -> None:
    """A recording full cluster that keeps what it is sent: users and role created, then left alone."""
    stored: dict[str, dict] = {}
    passwords = {"elastic": "admin-pass"}

    def respond(request: Request) -> Reply:
        path = request.path
        if path.startswith("/_security/") and request.method in ("PUT", "POST"):
            stored[path] = request.json()
            if path.endswith("/_password"):
                passwords[path.split("/")[3]] = request.json()["password"]
            elif "/user/" in path:
                passwords[path.rsplit("/", 1)[1]] = request.json()["password"]
            return reply_json(200, {"created": True}, PRODUCT)
        if request.method == "GET" and path in stored:
            body = {k: v for k, v in stored[path].items() if k != "password"}
            return reply_json(200, {path.rsplit("/", 1)[1]: body}, PRODUCT)
        return full_elasticsearch(passwords)(request)

    env = {"PATH": "/usr/bin:/bin", "ES_PASSWORD": "admin-pass"}
    env.update(LOGSTASH_WRITER_PASSWORD="writer-pass-1", KIBANA_SYSTEM_PASSWORD="kibana-pass-1")
    with recording_server(respond) as (url, requests):
        first = run_bootstrap({**env, "ES_URL": url}, "--skip-kibana")
        count = len(requests)
        second = run_bootstrap({**env, "ES_URL": url}, "--skip-kibana")
        again = requests[count:]
    assert first.returncode == 0 and second.returncode == 0, (first.stderr, second.stderr)
    assert "role task_time_logstash_writer: created" in first.stdout
    assert passwords["task_time_logstash"] == "writer-pass-1" and passwords["kibana_system"] == "kibana-pass-1"
    assert [r.path for r in again if r.method in ("PUT", "POST") and "/_security/" in r.path] == []
    assert "user task_time_logstash: unchanged" in second.stdout
    assert "user kibana_system password: unchanged" in second.stdout


@pytest.mark.elasticsearch
@pytest.mark.jvm
def test_logstash_writer_can_append_task_documents_and_nothing_else(
    es: ElasticsearchTarget, writer: Elasticsearch
) -> None:
    # What Logstash's output does: read the license at start-up, then bulk-create into a
    # daily index that does not exist yet.
    assert writer.license.get()["license"]["status"] == "active"
    event = logstash.Pipeline(environ={}).run("Time: 2026-11-21 23:48:57,244 Task: jobs.x Task-time: 1.500000")
    response = writer.bulk(
        operations=[{"create": {"_index": event["@metadata"]["_index"]}}, logstash.document(event)], refresh="wait_for"
    )
    assert not response["errors"], response
    assert es.client().count(index="task-time-2026.11.21")["count"] == 1

    forbidden = [
        lambda: writer.search(index="task-time-*"),
        lambda: writer.indices.delete(index="task-time-2026.11.21"),
        lambda: writer.index(index="task-time-2026.11.21", id="x", document={"task_time": 1}),
        lambda: writer.index(index="other-index", document={"task_time": 1}),
        lambda: writer.indices.put_index_template(name="task-time", index_patterns=["task-time-*"]),
        lambda: writer.cluster.put_settings(persistent={"cluster.routing.allocation.enable": "none"}),
    ]
    for attempt in forbidden:
        with pytest.raises(AuthorizationException):
            attempt()
    outcome = writer.bulk(operations=[{"create": {"_index": "logs-other"}}, {"a": 1}])
    assert outcome["items"][0]["create"]["status"] == 403
