"""The requests bootstrap sends to Kibana, and to a full Elasticsearch's ILM and security APIs.

The tests run no Kibana, and the integ-test Elasticsearch has neither ILM nor a working
native realm. These tests check the *requests* bootstrap sends for those paths against a
loopback server that records them; they do not claim that Kibana or a full Elasticsearch
accepts them (the README says what is verified how). The Elasticsearch half of the
Kibana tests is the real test cluster.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.bootstrap.assets import digest, load_elasticsearch_assets
from pipeline.bootstrap.install import body_with_marker
from pipeline.bootstrap.kibana import IMPORT_FILENAME
from pipeline.bootstrap.saved_objects import ENCODED_ATTRIBUTES, load_saved_objects, marked
from tests.conftest import ElasticsearchTarget
from tests.support.recording_server import Reply, Request, recording_server, reply_json

REPO = Path(__file__).resolve().parents[1]
SAVED = load_saved_objects(REPO)


def run_bootstrap(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.bootstrap", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


def multipart_file(request: Request) -> tuple[str, str, bytes]:
    """(field name, filename, content) of the one file part of a multipart body."""
    boundary = re.search(r"boundary=(.+)$", request.headers["content-type"]).group(1)
    [part] = [p for p in request.body.split(f"--{boundary}".encode()) if b"Content-Disposition" in p]
    head, content = part.split(b"\r\n\r\n", 1)
    field = re.search(rb'name="([^"]+)"', head).group(1).decode()
    filename = re.search(rb'filename="([^"]+)"', head).group(1).decode()
    return field, filename, content.removesuffix(b"\r\n")


def kibana(stored: dict[tuple[str, str], dict] | None = None, import_reply: Callable[[Request], Reply] | None = None):
    """A recording Kibana: ready at once; export returns ``stored``; import answers with ``import_reply``."""
    stored = {} if stored is None else stored

    def respond(request: Request) -> Reply:
        if request.path == "/api/status":
            return reply_json(200, {"status": {"overall": {"level": "available"}}})
        if request.path == "/api/saved_objects/_export":
            wanted = [(o["type"], o["id"]) for o in request.json()["objects"]]
            if any(key not in stored for key in wanted):  # what Kibana does for a missing object
                return reply_json(400, {"statusCode": 400, "message": "Error fetching objects to export"})
            if request.json().get("includeReferencesDeep"):
                for key in wanted:  # grows while it is walked: references of references
                    wanted += [
                        (r["type"], r["id"]) for r in stored[key]["references"] if (r["type"], r["id"]) not in wanted
                    ]
            lines = [json.dumps(stored[key]) for key in wanted] + [json.dumps({"exportedCount": len(wanted)})]
            return 200, {"Content-Type": "application/ndjson"}, "\n".join(lines).encode()
        if request.path == "/api/saved_objects/_import" and import_reply:
            return import_reply(request)
        return reply_json(404, {"message": "unexpected request"})

    return recording_server(respond)


def import_all_created(request: Request) -> Reply:
    _, _, content = multipart_file(request)
    items = [json.loads(line) for line in content.decode().splitlines()]
    results = [{"type": i["type"], "id": i["id"], "meta": {"title": i["attributes"].get("title")}} for i in items]
    return reply_json(200, {"success": True, "successCount": len(items), "successResults": results, "warnings": []})


def test_first_import_sends_every_object_once_as_kibana_expects(es: ElasticsearchTarget) -> None:
    with kibana(import_reply=import_all_created) as (url, requests):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url))
    assert done.returncode == 0, done.stderr
    [request] = [r for r in requests if r.path == "/api/saved_objects/_import"]
    assert request.method == "POST"
    assert request.query == {"overwrite": ["true"]}
    assert request.headers["kbn-xsrf"]
    token = base64.b64encode(f"{es.username}:{es.password}".encode()).decode()
    assert request.headers["authorization"] == f"Basic {token}"
    field, filename, content = multipart_file(request)
    assert field == "file" and filename == IMPORT_FILENAME and filename.endswith(".ndjson")
    sent = [json.loads(line) for line in content.decode().splitlines()]
    assert sent == [marked(saved) for saved in SAVED]
    for saved, body in zip(SAVED, sent, strict=True):
        for dotted in ENCODED_ATTRIBUTES.get(body["type"], ()):  # nested JSON goes to Kibana as JSON text
            *parents, last = dotted.split(".")
            holder = body["attributes"]
            for key in parents:
                holder = holder.get(key, {})
            if last in holder:
                assert isinstance(holder[last], str) and ": " not in holder[last][:40], (saved.key, dotted)
        if body["type"] != "index-pattern":
            assert body["attributes"]["description"].endswith(f"[rq-task-time {saved.digest}]")
        assert {k: v for k, v in body.items() if k != "attributes"} == {
            k: v for k, v in saved.body.items() if k != "attributes"
        }
    for saved in SAVED:
        assert f"kibana: {saved.key[0]} {saved.key[1]}: created" in done.stdout
    assert "kibana: ready at" in done.stdout


def test_objects_kibana_already_holds_are_reported_unchanged_and_not_imported(es: ElasticsearchTarget) -> None:
    # What an export returns after import: Kibana's own migrated shape, our marker kept.
    stored = {}
    for saved in SAVED:
        body = marked(saved)
        if body["type"] == "search":  # Kibana 9 moves a saved search's settings into tabs
            attributes = body["attributes"]
            body["attributes"] = {
                "title": attributes["title"],
                "description": attributes["description"],
                "tabs": [{"id": "t1", "label": "Untitled", "attributes": {"columns": attributes["columns"]}}],
            }
        body["typeMigrationVersion"] = "10.99.0"
        stored[saved.key] = body
    assert run_bootstrap(es.bootstrap_env(), "--skip-kibana").returncode == 0  # the Elasticsearch half first
    with kibana(stored=stored, import_reply=import_all_created) as (url, requests):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url))
    assert done.returncode == 0, done.stderr
    assert not [r for r in requests if r.path == "/api/saved_objects/_import"]
    assert "bootstrap: done: nothing changed" in done.stdout
    assert done.stdout.count(": unchanged") >= len(SAVED)


def as_kibana_exports(body: dict) -> dict:
    """An imported object as Kibana's export returns it: with its bookkeeping fields."""
    return {
        **body,
        "updated_at": "2026-11-22T07:00:00.000Z",
        "created_at": "2026-11-22T07:00:00.000Z",
        "version": "WzEsMV0=",
    }


def test_export_to_files_and_import_again_is_a_fixed_point(es: ElasticsearchTarget, tmp_path: Path) -> None:
    """Kibana holds what bootstrap imported; ``export`` writes the very files it came from, and
    importing those files sends the very objects Kibana holds."""
    stored = {saved.key: as_kibana_exports(marked(saved)) for saved in SAVED}
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    (assets / "kibana").mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "ES_PASSWORD": "unused"}
    objects = [
        f"--object={t}:{i}"
        for t, i in (("dashboard", "task-time-overview"), *[s.key for s in SAVED if s.key[0] == "search"])
    ]
    with kibana(stored=stored) as (url, requests):
        done = run_bootstrap({**env, "KIBANA_URL": url}, "export", "--assets", str(assets), *objects)
    assert done.returncode == 0, done.stderr
    exports = [r.json() for r in requests if r.path == "/api/saved_objects/_export"]
    assert any(e["includeReferencesDeep"] for e in exports)
    written = sorted(p.relative_to(assets) for p in (assets / "kibana").rglob("*.json"))
    assert written == sorted(s.path.relative_to(REPO) for s in SAVED)  # the lens and data view came as references
    for saved in SAVED:
        assert (assets / saved.path.relative_to(REPO)).read_bytes() == saved.path.read_bytes(), saved.path

    gone = run_bootstrap({**env, "KIBANA_URL": url}, "export", "--assets", str(assets), "--timeout", "2")
    assert gone.returncode == 3 and len(gone.stderr.splitlines()) == 1  # Kibana stopped: files left as they were
    for saved in SAVED:
        assert (assets / saved.path.relative_to(REPO)).read_bytes() == saved.path.read_bytes(), saved.path

    with kibana(import_reply=import_all_created) as (url, requests):
        imported = run_bootstrap(es.bootstrap_env(KIBANA_URL=url), "--kibana-only", "--assets", str(assets))
    assert imported.returncode == 0, imported.stderr
    [request] = [r for r in requests if r.path == "/api/saved_objects/_import"]
    sent = [json.loads(line) for line in multipart_file(request)[2].decode().splitlines()]
    assert {(o["type"], o["id"]): o for o in sent} == {saved.key: marked(saved) for saved in SAVED}
    assert sent == [
        {k: v for k, v in stored[(o["type"], o["id"])].items() if k not in ("updated_at", "created_at", "version")}
        for o in sent
    ]


def test_an_object_edited_in_kibana_exports_as_a_readable_diff(tmp_path: Path) -> None:
    stored = {saved.key: as_kibana_exports(marked(saved)) for saved in SAVED}
    dashboard = stored[("dashboard", "task-time-overview")]["attributes"]
    panels = json.loads(dashboard["panelsJSON"])
    panels[0]["gridData"]["h"] = 20
    dashboard["panelsJSON"] = json.dumps(panels, separators=(",", ":"))
    dashboard["description"] = "Edited in Kibana"
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    shutil.copytree(REPO / "kibana", assets / "kibana")
    with kibana(stored=stored) as (url, _):
        done = run_bootstrap({"PATH": "/usr/bin:/bin", "KIBANA_URL": url}, "export", "--assets", str(assets))
    assert done.returncode == 0, done.stderr
    assert "kibana: dashboard task-time-overview -> kibana/dashboard/task-time-overview.json: updated" in done.stdout
    assert "kibana: search task-time-slowest -> kibana/search/task-time-slowest.json: unchanged" in done.stdout
    path = "kibana/dashboard/task-time-overview.json"
    before, after = (REPO / path).read_text().splitlines(), (assets / path).read_text().splitlines()
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert sorted(b.strip() for _, b in changed) == ['"description": "Edited in Kibana",', '"h": 20,']


def test_only_changed_and_missing_objects_are_imported(es: ElasticsearchTarget) -> None:
    stored = {saved.key: marked(saved) for saved in SAVED}
    changed = SAVED[1]
    stored[changed.key]["attributes"]["description"] = "edited [rq-task-time 0000000000000000]"
    missing = SAVED[-1]
    del stored[missing.key]

    def replace(request: Request) -> Reply:
        reply = json.loads(import_all_created(request)[2])
        for item in reply["successResults"]:
            item["overwrite"] = (item["type"], item["id"]) == changed.key
        return reply_json(200, reply)

    with kibana(stored=stored, import_reply=replace) as (url, requests):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url))
    assert done.returncode == 0, done.stderr
    [request] = [r for r in requests if r.path == "/api/saved_objects/_import"]
    sent = [json.loads(line) for line in multipart_file(request)[2].decode().splitlines()]
    assert [(o["type"], o["id"]) for o in sent] == [changed.key, missing.key]
    assert f"kibana: {changed.key[0]} {changed.key[1]}: updated" in done.stdout
    assert f"kibana: {missing.key[0]} {missing.key[1]}: created" in done.stdout


def test_kibana_import_errors_are_reported_per_object_with_exit_1(es: ElasticsearchTarget) -> None:
    def refuse(request: Request) -> Reply:
        return reply_json(
            200,
            {
                "success": False,
                "successCount": 0,
                "errors": [
                    {
                        "type": "lens",
                        "id": "task-time-ranking",
                        "meta": {"title": "Tasks ranked by total time"},
                        "error": {"type": "missing_references", "references": [{"type": "index-pattern", "id": "x"}]},
                    },
                    {
                        "type": "dashboard",
                        "id": "task-time-overview",
                        "meta": {},
                        "error": {"type": "unknown", "message": "invalid panelsJSON"},
                    },
                ],
            },
        )

    with kibana(import_reply=refuse) as (url, _):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url))
    assert done.returncode == 1
    assert "kibana: lens task-time-ranking: import failed: missing_references: index-pattern x" in done.stdout
    assert "kibana: dashboard task-time-overview: import failed: unknown: invalid panelsJSON" in done.stdout
    assert done.stderr.strip() == "bootstrap: error: kibana: 2 saved object(s) were not imported (see the lines above)"


@pytest.mark.parametrize(("status", "code"), [(401, 4), (403, 4), (503, 3)])
def test_kibana_refusing_or_never_ready_is_one_line(es: ElasticsearchTarget, status: int, code: int) -> None:
    def respond(request: Request) -> Reply:
        return reply_json(status, {"statusCode": status, "message": "nope"})

    with recording_server(respond) as (url, _):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url, BOOTSTRAP_TIMEOUT="3"))
    assert done.returncode == code
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("bootstrap: error: kibana: ")


# ------------------------------------------------- ILM and native-realm request shapes

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
    ],
)
def test_settings_no_service_could_fix_are_refused_at_once(args: list[str], message: str) -> None:
    done = run_bootstrap({"PATH": "/usr/bin:/bin"}, *args)
    assert done.returncode == 2
    assert done.stderr.strip() == f"bootstrap: error: {message}"
    assert "waiting" not in done.stdout


def test_a_degraded_kibana_is_ready_enough(es: ElasticsearchTarget) -> None:
    """Kibana often reports "degraded" on small machines while its API works."""

    def respond(request: Request) -> Reply:
        if request.path == "/api/status":
            return reply_json(200, {"status": {"overall": {"level": "degraded"}}})
        if request.path == "/api/saved_objects/_export":
            return reply_json(400, {"message": "Error fetching objects to export"})
        return import_all_created(request)

    with recording_server(respond) as (url, requests):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url, BOOTSTRAP_TIMEOUT="5"))
    assert done.returncode == 0, done.stderr
    assert f"kibana: ready at {url} (status degraded)" in done.stdout
    assert [r.path for r in requests].count("/api/saved_objects/_import") == 1


def test_default_passwords_are_warned_about(es: ElasticsearchTarget) -> None:
    done = run_bootstrap(es.bootstrap_env(), "--skip-kibana", "--dry-run", "--kibana-system-password", "changeme-k")
    assert "security: warning: KIBANA_SYSTEM_PASSWORD: still a changeme default" in done.stdout
