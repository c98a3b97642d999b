"""The requests bootstrap sends to Kibana, checked against a recording Kibana.

The tests start no Kibana. These tests check the *requests* bootstrap sends (status,
export, import, their authentication and shape) against a loopback server that records
them, and how bootstrap reads the answers; they do not claim that Kibana accepts them (the
README says what is verified how). The Elasticsearch half of a full run is the real test
cluster.
"""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path

import pytest

from harness.redis_server import free_port
from pipeline.bootstrap.kibana import IMPORT_FILENAME
from pipeline.bootstrap.saved_objects import ENCODED_ATTRIBUTES, load_saved_objects, marked
from tests.conftest import ElasticsearchTarget
from tests.support.recording_kibana import (
    as_kibana_exports,
    import_all_created,
    kibana,
    multipart_file,
    run_bootstrap,
)
from tests.support.recording_server import Reply, Request, recording_server, reply_json

REPO = Path(__file__).resolve().parents[1]
SAVED = load_saved_objects(REPO)


@pytest.mark.elasticsearch
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


@pytest.mark.elasticsearch
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


@pytest.mark.elasticsearch
def test_export_to_files_and_import_again_is_a_fixed_point(es: ElasticsearchTarget, tmp_path: Path) -> None:
    """Kibana holds what bootstrap imported; ``export`` writes the very files it came from, and
    importing those files sends the very objects Kibana holds."""
    stored = {saved.key: as_kibana_exports(marked(saved)) for saved in SAVED}
    assets = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", assets / "elasticsearch")
    (assets / "kibana").mkdir(parents=True)
    env = {"PATH": "/usr/bin:/bin", "ES_PASSWORD": "unused"}
    objects = [f"--object={t}:{i}" for t, i in (s.key for s in SAVED if s.key[0] in ("dashboard", "search"))]
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


@pytest.mark.unit
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


@pytest.mark.elasticsearch
def test_only_changed_and_missing_objects_are_imported(es: ElasticsearchTarget) -> None:
    stored = {saved.key: marked(saved) for saved in SAVED}
    changed = next(saved for saved in SAVED if saved.key[0] != "index-pattern")  # data views have no marker
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


@pytest.mark.elasticsearch
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


@pytest.mark.elasticsearch
@pytest.mark.parametrize(("status", "code"), [(401, 4), (403, 4), (503, 3)])
def test_kibana_refusing_or_never_ready_is_one_line(es: ElasticsearchTarget, status: int, code: int) -> None:
    def respond(request: Request) -> Reply:
        return reply_json(status, {"statusCode": status, "message": "nope"})

    with recording_server(respond) as (url, _):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url, BOOTSTRAP_TIMEOUT="3"))
    assert done.returncode == code
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("bootstrap: error: kibana: ")


@pytest.mark.unit
def test_kibana_only_never_contacts_elasticsearch() -> None:
    with kibana(import_reply=import_all_created) as (url, requests):
        env = {"PATH": "/usr/bin:/bin", "ES_URL": f"http://127.0.0.1:{free_port()}", "KIBANA_URL": url}
        done = run_bootstrap(env, "--kibana-only", "--timeout", "5")
    assert done.returncode == 0, done.stderr
    assert "elasticsearch" not in done.stdout
    assert [r.path for r in requests].count("/api/saved_objects/_import") == 1


@pytest.mark.elasticsearch
def test_a_degraded_kibana_is_ready_enough(es: ElasticsearchTarget) -> None:
    """Kibana often reports "degraded" on small machines while its API works."""

    # Nothing is stored yet, and there is no alerting plugin (404 for its API).
    with kibana(import_reply=import_all_created, level="degraded") as (url, requests):
        done = run_bootstrap(es.bootstrap_env(KIBANA_URL=url, BOOTSTRAP_TIMEOUT="5"))
    assert done.returncode == 0, done.stderr
    assert f"kibana: ready at {url} (status degraded)" in done.stdout
    assert [r.path for r in requests].count("/api/saved_objects/_import") == 1
