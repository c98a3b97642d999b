"""Kibana side of bootstrap: wait for Kibana, import the saved objects that changed, export them back.

What Kibana holds is read back with the export API (not deprecated, unlike the saved
object CRUD API). Kibana migrates objects on import, so they cannot be compared field by
field; instead bootstrap appends ``[rq-task-time <digest>]`` to each object's description
and compares that marker. Data views have no description; their few attributes are not
migrated and are compared directly.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import HandshakeFailed, Rejected, Unreachable, UsageError
from .kibana_client import SERVICE, KibanaClient, check_auth, message
from .progress import Progress, wait_for
from .saved_objects import MARKER, SavedObject, decode, marked, write_object

IMPORT_FILENAME = "rq-task-time.ndjson"
# Kibana fills a data view's field list in by itself; every other attribute is ours.
_DATA_VIEW_DERIVED = ("fields",)


def wait_for_kibana_status(kibana: KibanaClient, timeout: float, progress: Progress) -> None:
    """Wait until ``/api/status`` reports Kibana's overall level as available (or degraded)."""

    def probe() -> str | None:
        try:
            status, body = kibana.request("GET", "/api/status", timeout=10)
        except HandshakeFailed:
            raise
        except Unreachable as exc:
            return str(exc).rsplit(": ", 1)[-1]
        check_auth(status, body, "waiting for Kibana")
        level = body.get("status", {}).get("overall", {}).get("level") if isinstance(body, dict) else None
        # "degraded" is common on small machines (a slow background plugin) and serves the API fine.
        if status == 200 and level in ("available", "degraded"):
            progress.say(SERVICE, f"ready at {kibana.url}" + (" (status degraded)" if level == "degraded" else ""))
            return None
        return f"status {level}" if level else f"HTTP {status}"

    wait_for(probe, SERVICE, kibana.url, timeout, progress)


def _unchanged(saved: SavedObject, installed: dict[str, Any] | None) -> bool:
    if installed is None:
        return False
    attributes = installed.get("attributes", {})
    if saved.body["type"] == "index-pattern":
        ours = decode(marked(saved))["attributes"]
        theirs = decode(installed)["attributes"]
        return all(ours[key] == theirs.get(key) for key in ours if key not in _DATA_VIEW_DERIVED)
    found = MARKER.search(attributes.get("description") or "")
    return found is not None and found.group(1) == saved.digest


def export(kibana: KibanaClient, keys: Iterable[tuple[str, str]], deep: bool = False) -> dict[tuple[str, str], Any]:
    """The stored objects for ``keys`` as Kibana exports them; raises ``LookupError`` when one is missing."""
    request = {"objects": [{"type": t, "id": i} for t, i in keys], "includeReferencesDeep": deep}
    status, body = kibana.request("POST", "/api/saved_objects/_export", request)
    check_auth(status, body, "reading saved objects")
    if status == 400:
        raise LookupError(message(body))
    if status != 200 or not isinstance(body, list):
        raise Rejected(f"{SERVICE}: export of saved objects failed: HTTP {status}: {message(body)}")
    return {(o["type"], o["id"]): o for o in body if isinstance(o, dict) and "type" in o and "id" in o}


def installed_objects(kibana: KibanaClient, keys: list[tuple[str, str]]) -> dict[tuple[str, str], Any]:
    """What Kibana holds for ``keys``; absent keys are not installed."""
    try:
        return export(kibana, keys)
    except LookupError:
        pass
    found: dict[tuple[str, str], Any] = {}
    for key in keys:  # one is missing: ask one by one to learn which
        try:
            found.update(export(kibana, [key]))
        except LookupError:
            continue
    return found


def multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    """A multipart/form-data body with one file field named ``file``, and its content type."""
    boundary = f"----rq-task-time-{uuid.uuid4().hex}"
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/ndjson\r\n\r\n"
    ).encode()
    return head + content + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def import_objects(kibana: KibanaClient, objects: list[SavedObject], progress: Progress, dry_run: bool) -> None:
    """Import the objects Kibana lacks or holds in another version; report every object."""
    installed = installed_objects(kibana, [o.key for o in objects])
    changed = [o for o in objects if not _unchanged(o, installed.get(o.key))]
    for saved in objects:
        if saved not in changed:
            progress.outcome(SERVICE, f"{saved.key[0]} {saved.key[1]}", "unchanged")
    if not changed:
        return
    if dry_run:
        for saved in changed:
            what = f"{saved.key[0]} {saved.key[1]}"
            progress.outcome(SERVICE, what, "updated" if saved.key in installed else "created")
        return
    ndjson = "".join(json.dumps(marked(o), ensure_ascii=False) + "\n" for o in changed).encode()
    body, content_type = multipart(IMPORT_FILENAME, ndjson)
    status, result = kibana.request("POST", "/api/saved_objects/_import?overwrite=true", body, content_type)
    check_auth(status, result, "importing saved objects")
    if status != 200:
        raise Rejected(f"{SERVICE}: import refused: HTTP {status}: {message(result)}")
    if not isinstance(result, dict):
        raise Rejected(f"{SERVICE}: import answered with something that is not JSON: {message(result)}")
    for item in result.get("successResults", []):
        outcome = "updated" if item.get("overwrite") else "created"
        progress.outcome(SERVICE, f"{item['type']} {item['id']}", outcome)
    errors = result.get("errors", [])
    for error in errors:
        detail = error.get("error", {})
        kind = detail.get("type", "error")
        extra = detail.get("message") or ", ".join(
            f"{ref.get('type')} {ref.get('id')}" for ref in detail.get("references", [])
        )
        progress.say(
            SERVICE, f"{error.get('type')} {error.get('id')}: import failed: {kind}{f': {extra}' if extra else ''}"
        )
    if errors or not result.get("success", False):
        raise Rejected(f"{SERVICE}: {len(errors)} saved object(s) were not imported (see the lines above)")


def export_to_files(
    kibana: KibanaClient, root: Path, keys: list[tuple[str, str]], progress: Progress
) -> list[tuple[str, str]]:
    """Write ``keys`` and everything they refer to, as Kibana holds them, into ``root``'s ``kibana/`` layout.

    Returns the keys Kibana does not hold (their files are left as they are).
    """
    found = installed_objects(kibana, keys)
    missing = [key for key in keys if key not in found]
    if found:
        found.update(export(kibana, list(found), deep=True))
    for key in sorted(found):
        path, changed = write_object(root, decode(found[key]))
        progress.outcome(
            SERVICE, f"{key[0]} {key[1]} -> {path.relative_to(root)}", "updated" if changed else "unchanged"
        )
    for key in missing:
        progress.outcome(SERVICE, f"{key[0]} {key[1]}", "skipped", "Kibana does not hold it")
    return missing


def parse_key(text: str) -> tuple[str, str]:
    """``type:id`` (as given to ``export --object``) as a key."""
    type_, sep, id_ = text.partition(":")
    if not sep or not type_ or not id_ or "/" in id_:
        raise UsageError(f"--object takes TYPE:ID (e.g. dashboard:task-time-overview), not {text!r}")
    return type_, id_
