"""Every bootstrap failure is one line on stderr with its exit code, tried one by one.

Bad asset files are refused before any service is contacted (the Elasticsearch URL
given is a port nobody listens on, and nothing waits for it). Servers that are not
Elasticsearch are loopback HTTP servers answering as such a server would.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.redis_server import free_port
from tests.support.recording_server import Reply, Request, recording_server

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]


def run_bootstrap(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.bootstrap", *args],
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )


@pytest.fixture
def assets(tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    shutil.copytree(REPO / "elasticsearch", root / "elasticsearch")
    shutil.copytree(REPO / "kibana", root / "kibana")
    return root


def refused_before_connecting(assets: Path) -> subprocess.CompletedProcess:
    done = run_bootstrap("--assets", str(assets), "--timeout", "30", ES_URL=f"http://127.0.0.1:{free_port()}")
    assert "waiting" not in done.stdout and "ready" not in done.stdout, done.stdout
    return done


def test_a_non_utf8_asset_file_is_one_line_and_exit_2(assets: Path) -> None:
    (assets / "elasticsearch" / "roles" / "task_time_logstash_writer.json").write_bytes(b'{"cluster": ["\xe9"]}')
    done = refused_before_connecting(assets)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "bootstrap: error: elasticsearch/roles/task_time_logstash_writer.json: not UTF-8 text "
        "(byte 14: invalid continuation byte)"
    ]


def test_a_folder_named_json_is_one_line_and_exit_2(assets: Path) -> None:
    (assets / "elasticsearch" / "index-templates" / "extra.json").mkdir()
    done = refused_before_connecting(assets)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "bootstrap: error: elasticsearch/index-templates/extra.json: not a file (a folder named *.json?)"
    ]


@pytest.mark.parametrize(
    ("file", "change", "message"),
    [
        (
            "elasticsearch/component-templates/task-time-mappings.json",
            {"template": []},
            "'template' must be an object, not list",
        ),
        ("elasticsearch/index-templates/task-time.json", {"priority": "high"}, "'priority' must be a number, not str"),
        ("elasticsearch/roles/task_time_logstash_writer.json", {"indices": {}}, "'indices' must be a list, not dict"),
        ("kibana/lens/task-time-ranking.json", {"attributes": "x"}, "a saved object needs an 'attributes' object"),
        ("kibana/search/task-time-slowest.json", {"id": "other"}, "type and id must match the file's folder"),
    ],
)
def test_an_asset_of_the_wrong_shape_is_refused_before_connecting(
    assets: Path, file: str, change: dict, message: str
) -> None:
    path = assets / file
    path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
    done = refused_before_connecting(assets)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith(f"bootstrap: error: {file}: {message}"), line


def html_page(status: int):
    def respond(request: Request) -> Reply:
        page = "<html>\n<head><title>Welcome</title></head>\n<body>\n<h1>It works</h1>\n</body>\n</html>\n"
        return status, {"Content-Type": "text/html"}, page.encode()

    return respond


@pytest.mark.parametrize("status", [200, 404])
def test_an_es_url_answering_with_a_web_page_is_not_elasticsearch_at_once(status: int) -> None:
    with recording_server(html_page(status)) as (url, requests):
        started = time.monotonic()
        done = run_bootstrap("--skip-kibana", "--timeout", "60", ES_URL=url)
    assert time.monotonic() - started < 30  # not the whole timeout
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"bootstrap: error: elasticsearch: {url} is not Elasticsearch (no X-Elastic-Product header); check ES_URL"
    ]
    assert len(requests) == 1


def test_https_on_a_plain_http_port_gives_the_whole_reason_at_once() -> None:
    with recording_server(html_page(200)) as (url, _):
        https = url.replace("http://", "https://")
        done = run_bootstrap("--skip-kibana", "--timeout", "60", ES_URL=https)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"bootstrap: error: elasticsearch: cannot connect to {https}: TLS handshake failed: wrong version number "
        "(does the port speak plain HTTP? then use http://)"
    ]


def test_https_on_a_plain_http_kibana_port_gives_the_whole_reason_at_once() -> None:
    with recording_server(html_page(200)) as (url, _):
        https = url.replace("http://", "https://")
        done = run_bootstrap("--kibana-only", "--timeout", "60", KIBANA_URL=https)
    assert done.returncode == 3
    assert done.stderr.splitlines() == [
        f"bootstrap: error: kibana: cannot connect to {https}: TLS handshake failed: wrong version number "
        "(does the port speak plain HTTP? then use http://)"
    ]


@pytest.mark.parametrize(
    ("sig", "code", "line"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated (SIGTERM)")]
)
def test_an_interrupted_or_terminated_bootstrap_says_so_in_one_line(sig: signal.Signals, code: int, line: str) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.bootstrap", "--skip-kibana", "--timeout", "120"],
        env={"PATH": "/usr/bin:/bin", "ES_URL": f"http://127.0.0.1:{free_port()}"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        # A job a shell started in the background inherits SIGINT ignored, and Python keeps
        # it so: give the child the disposition a terminal's Ctrl-C meets.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert "waiting for" in process.stdout.readline()  # it is inside the wait loop
    process.send_signal(sig)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code
    assert stderr.splitlines() == [f"bootstrap: {line}"]
