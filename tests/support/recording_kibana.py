"""A recording Kibana for bootstrap's tests, and running bootstrap as a process against it.

The tests start no Kibana: this loopback server answers ``/api/status``, the export API
(including ``includeReferencesDeep``, as Kibana walks references) and the import API the
way Kibana's documentation describes, and records every request (see recording_server).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from tests.support.recording_server import Reply, Request, recording_server, reply_json

REPO = Path(__file__).resolve().parents[2]


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


def kibana(
    stored: dict[tuple[str, str], dict] | None = None,
    import_reply: Callable[[Request], Reply] | None = None,
    level: str = "available",
    other: Callable[[Request], Reply] | None = None,
) -> AbstractContextManager[tuple[str, list[Request]]]:
    """A recording Kibana: ready at once with status ``level``; export returns ``stored``; import
    answers with ``import_reply``; any other request with ``other`` (else 404)."""
    stored = {} if stored is None else stored

    def respond(request: Request) -> Reply:
        if request.path == "/api/status":
            return reply_json(200, {"status": {"overall": {"level": level}}})
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
        if other:
            return other(request)
        return reply_json(404, {"message": "unexpected request"})

    return recording_server(respond)


def import_all_created(request: Request) -> Reply:
    _, _, content = multipart_file(request)
    items = [json.loads(line) for line in content.decode().splitlines()]
    results = [{"type": i["type"], "id": i["id"], "meta": {"title": i["attributes"].get("title")}} for i in items]
    return reply_json(200, {"success": True, "successCount": len(items), "successResults": results, "warnings": []})


def as_kibana_exports(body: dict) -> dict:
    """An imported object as Kibana's export returns it: with its bookkeeping fields."""
    return {
        **body,
        "updated_at": "2026-11-22T07:00:00.000Z",
        "created_at": "2026-11-22T07:00:00.000Z",
        "version": "WzEsMV0=",
    }
