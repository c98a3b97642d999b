"""rabbitmq/monitor_user.py against a small fake of RabbitMQ's management API: the requests it
sends, waiting while the API is not ready, and its refusals. The real node: tests/test_rabbitmq_setup.py."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.support.rabbitmq_setup import run_setup

pytestmark = [pytest.mark.unit]

ADMIN = ("admin", "adminSecret1")
MONITOR = ("monitor", "monitorSecret1")


class FakeApi(ThreadingHTTPServer):
    """Users, tags and vhost permissions; ``unready`` answers 503 to that many requests first."""

    def __init__(self, unready: int = 0) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.unready = unready
        self.users: dict[str, dict[str, Any]] = {ADMIN[0]: {"password": ADMIN[1], "tags": "administrator"}}
        self.permissions: dict[tuple[str, str], dict[str, str]] = {}
        self.seen: list[tuple[str, str, str, Any]] = []  # method, path, user, body

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeApi

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def answer(self, code: int, body: Any = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def handle_one(self) -> None:
        api = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        name, _, password = base64.b64decode(self.headers["Authorization"].split()[1]).decode().partition(":")
        api.seen.append((self.command, self.path, name, body))
        if api.unready > 0:
            api.unready -= 1
            return self.answer(503, {"error": "not ready"})
        if api.users.get(name, {}).get("password") != password:
            return self.answer(401, {"error": "not_authorised", "reason": "Login failed"})
        if self.path == "/api/whoami":
            return self.answer(200, {"name": name, "tags": [api.users[name]["tags"]]})
        if api.users[name]["tags"] != "administrator":
            return self.answer(401, {"error": "not_authorised", "reason": "Not administrator user"})
        if self.command == "GET" and self.path == "/api/overview":
            return self.answer(200, {"rabbitmq_version": "3.12.0"})
        if self.command == "PUT" and self.path.startswith("/api/users/"):
            api.users[self.path.rsplit("/", 1)[1]] = body
            return self.answer(204)
        if self.command == "PUT" and self.path.startswith("/api/permissions/"):
            _, _, _, vhost, user = self.path.split("/")
            api.permissions[(vhost, user)] = body
            return self.answer(204)
        return self.answer(404, {"error": "Object Not Found"})

    do_GET = do_PUT = handle_one


@pytest.fixture
def api(request: pytest.FixtureRequest) -> Iterator[FakeApi]:
    server = FakeApi(getattr(request, "param", 0))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def environment(api: FakeApi, **changes: str) -> dict[str, str]:
    env = {
        "RABBITMQ_API": api.url,
        "RABBITMQ_USER": ADMIN[0],
        "RABBITMQ_PASSWORD": ADMIN[1],
        "RABBITMQ_MONITOR_USER": MONITOR[0],
        "RABBITMQ_MONITOR_PASSWORD": MONITOR[1],
    }
    return {**env, **changes}


def no_secret(*texts: str) -> bool:
    return not any(secret in text for secret in (ADMIN[1], MONITOR[1]) for text in texts)


@pytest.mark.parametrize("api", [3], indirect=True)
def test_it_waits_for_the_api_then_sets_the_tag_and_empty_permissions(api: FakeApi) -> None:
    for _ in range(2):  # and again: the same requests, the same end state
        done = run_setup(environment(api), timeout=60)
        assert done.returncode == 0, done.stderr
        assert no_secret(done.stdout, done.stderr) and not done.stderr
    assert api.users[MONITOR[0]] == {"password": MONITOR[1], "tags": "monitoring"}
    assert api.permissions == {("%2F", MONITOR[0]): {"configure": "^$", "write": "^$", "read": "^$"}}
    run = [
        ("GET", "/api/overview", ADMIN[0]),
        ("PUT", "/api/users/monitor", ADMIN[0]),
        ("PUT", "/api/permissions/%2F/monitor", ADMIN[0]),
        ("GET", "/api/whoami", MONITOR[0]),  # the new password works
    ]
    assert [(method, path, user) for method, path, user, _ in api.seen[3:]] == run * 2
    assert api.seen[:3] == [("GET", "/api/overview", ADMIN[0], None)] * 3  # 503: waited, asked again


def test_a_refused_administrator_fails_at_once_in_one_line(api: FakeApi) -> None:
    done = run_setup(environment(api, RABBITMQ_USER="monitoring-only"), timeout=30)
    assert done.returncode == 1 and not done.stdout
    assert done.stderr == (
        f"rabbitmq-setup: 127.0.0.1:{api.server_address[1]}/api/overview: "
        'HTTP 401: {"error": "not_authorised", "reason": "Login failed"}\n'
    )
    assert len(api.seen) == 1 and MONITOR[0] not in api.users


@pytest.mark.parametrize(
    "changes",
    [{"RABBITMQ_MONITOR_PASSWORD": ""}, {"RABBITMQ_PASSWORD": ""}, {"RABBITMQ_MONITOR_USER": ADMIN[0]}],
    ids=["no monitor password", "no admin password", "monitor is the admin"],
)
def test_it_refuses_to_run_without_both_users_or_with_one_user_for_both(api: FakeApi, changes: dict[str, str]) -> None:
    done = run_setup(environment(api, **changes), timeout=30)
    assert done.returncode == 1 and done.stderr.count("\n") == 1 and no_secret(done.stderr)
    assert not api.seen  # nothing sent
