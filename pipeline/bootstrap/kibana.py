"""Kibana side of bootstrap: wait for Kibana, then import the saved objects that changed.

What Kibana holds is read back with the export API (not deprecated, unlike the saved
object CRUD API). Kibana migrates objects on import, so they cannot be compared field by
field; instead bootstrap appends ``[rq-task-time <digest>]`` to each object's description
and compares that marker. Data views have no description; their few attributes are not
migrated and are compared directly.
"""

from __future__ import annotations

import base64
import json
import re
import ssl
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from .assets import MANAGED_BY, SavedObject
from .report import AccessDenied, Rejected, Reporter, Unreachable
from .report import wait_until_ready as wait_until

SERVICE = "kibana"
IMPORT_FILENAME = "rq-task-time.ndjson"
_MARKER = re.compile(rf" \[{re.escape(MANAGED_BY)} ([0-9a-f]{{16}})\]$")
# Kibana fills a data view's field list in by itself; every other attribute is ours.
_DATA_VIEW_DERIVED = ("fields",)


@dataclass(frozen=True)
class KibanaConnection:
    """Kibana's URL and the credentials to use (the same user or API key as Elasticsearch)."""

    url: str = "http://localhost:5601"
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_cert: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {"kbn-xsrf": MANAGED_BY}
        if self.api_key:
            headers["Authorization"] = f"ApiKey {self.api_key}"
        elif self.username and self.password is not None:
            token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        return headers

    @cached_property
    def _tls(self) -> ssl.SSLContext | None:
        return ssl.create_default_context(cafile=self.ca_cert) if self.ca_cert else None

    def request(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None, timeout: float = 60
    ) -> tuple[int, bytes]:
        """Send one request; return the status and body, also for HTTP error statuses.

        Raises ``OSError`` when Kibana cannot be reached.
        """
        headers = self.headers()
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(self.url.rstrip("/") + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self._tls) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()

    def call(
        self, method: str, path: str, body: bytes | None = None, content_type: str | None = None
    ) -> tuple[int, bytes]:
        """``request``, with a lost connection turned into ``Unreachable``."""
        try:
            return self.request(method, path, body, content_type)
        except OSError as exc:
            raise Unreachable(f"{SERVICE}: connection to {self.url} failed: {getattr(exc, 'reason', exc)}") from None


def _message(body: bytes) -> str:
    try:
        content = json.loads(body)
        return str(content.get("message") or content.get("error") or content)
    except (ValueError, AttributeError):
        return body.decode(errors="replace")[:300]


def _check_auth(status: int, body: bytes, doing: str) -> None:
    if status == 401:
        raise AccessDenied(
            f"{SERVICE}: authentication failed (401) while {doing}: check the username/password or API key"
        )
    if status == 403:
        raise AccessDenied(f"{SERVICE}: permission denied (403) while {doing}: {_message(body)}")


def wait_until_ready(kibana: KibanaConnection, timeout: float, reporter: Reporter) -> None:
    """Wait until ``/api/status`` reports Kibana's overall level as available."""

    def probe() -> str | None:
        try:
            status, body = kibana.request("GET", "/api/status", timeout=10)
            _check_auth(status, body, "waiting for Kibana")
            level = json.loads(body).get("status", {}).get("overall", {}).get("level") if status == 200 else None
        except (OSError, ValueError) as exc:
            return str(getattr(exc, "reason", exc))
        # "degraded" is common on small machines (a slow background plugin) and serves the API fine.
        if level in ("available", "degraded"):
            reporter.say(SERVICE, f"ready at {kibana.url}" + (" (status degraded)" if level == "degraded" else ""))
            return None
        return f"status {level}" if level else f"HTTP {status}"

    wait_until(probe, SERVICE, kibana.url, timeout, reporter)


def marked(saved: SavedObject) -> dict[str, Any]:
    """The object as imported: its description carries the marker with its digest."""
    body = json.loads(json.dumps(saved.body))
    attributes = body["attributes"]
    if body["type"] != "index-pattern":
        attributes["description"] = f"{attributes.get('description', '')} [{MANAGED_BY} {saved.digest}]".lstrip()
    return body


def _decoded(value: Any) -> Any:
    """Data views keep maps as JSON strings; compare what they say, not how they are spaced."""
    if isinstance(value, str) and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            pass
    return value


def _unchanged(saved: SavedObject, installed: dict[str, Any] | None) -> bool:
    if installed is None:
        return False
    attributes = installed.get("attributes", {})
    if saved.body["type"] == "index-pattern":
        ours = saved.body["attributes"]
        return all(
            _decoded(ours[key]) == _decoded(attributes.get(key)) for key in ours if key not in _DATA_VIEW_DERIVED
        )
    found = _MARKER.search(attributes.get("description") or "")
    return bool(found) and found.group(1) == saved.digest


def _export(kibana: KibanaConnection, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]] | None:
    """The stored objects for ``keys`` (None when Kibana refuses because one is missing)."""
    request = {"objects": [{"type": t, "id": i} for t, i in keys], "includeReferencesDeep": False}
    status, body = kibana.call("POST", "/api/saved_objects/_export", json.dumps(request).encode(), "application/json")
    _check_auth(status, body, "reading saved objects")
    if status == 400:
        return None
    if status != 200:
        raise Rejected(f"{SERVICE}: export of the installed saved objects failed: HTTP {status}: {_message(body)}")
    found = {}
    try:
        for text in body.decode().splitlines():
            item = json.loads(text) if text.strip() else {}
            if "type" in item and "id" in item:
                found[(item["type"], item["id"])] = item
    except ValueError:
        raise Rejected(f"{SERVICE}: export answered with something that is not ndjson: {_message(body)}") from None
    return found


def installed_objects(kibana: KibanaConnection, objects: list[SavedObject]) -> dict[tuple[str, str], dict[str, Any]]:
    """What Kibana holds for our objects; absent keys are not installed."""
    everything = _export(kibana, [o.key for o in objects])
    if everything is not None:
        return everything
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for saved in objects:  # one is missing: ask one by one to learn which
        found.update(_export(kibana, [saved.key]) or {})
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


def import_objects(kibana: KibanaConnection, objects: list[SavedObject], reporter: Reporter, dry_run: bool) -> None:
    """Import the objects Kibana lacks or holds in another version; report every object."""
    installed = installed_objects(kibana, objects)
    changed = [o for o in objects if not _unchanged(o, installed.get(o.key))]
    for saved in objects:
        if saved not in changed:
            reporter.outcome(SERVICE, f"{saved.key[0]} {saved.key[1]}", "unchanged")
    if not changed:
        return
    if dry_run:
        for saved in changed:
            reporter.outcome(
                SERVICE, f"{saved.key[0]} {saved.key[1]}", "updated" if saved.key in installed else "created"
            )
        return
    ndjson = "".join(json.dumps(marked(o), ensure_ascii=False) + "\n" for o in changed).encode()
    body, content_type = multipart(IMPORT_FILENAME, ndjson)
    status, response = kibana.call("POST", "/api/saved_objects/_import?overwrite=true", body, content_type)
    _check_auth(status, response, "importing saved objects")
    if status != 200:
        raise Rejected(f"{SERVICE}: import refused: HTTP {status}: {_message(response)}")
    try:
        result = json.loads(response)
    except ValueError:
        raise Rejected(f"{SERVICE}: import answered with something that is not JSON: {_message(response)}") from None
    for item in result.get("successResults", []):
        outcome = "updated" if item.get("overwrite") else "created"
        reporter.outcome(SERVICE, f"{item['type']} {item['id']}", outcome)
    errors = result.get("errors", [])
    for error in errors:
        detail = error.get("error", {})
        kind = detail.get("type", "error")
        extra = detail.get("message") or ", ".join(
            f"{ref.get('type')} {ref.get('id')}" for ref in detail.get("references", [])
        )
        reporter.say(
            SERVICE, f"{error.get('type')} {error.get('id')}: import failed: {kind}{f': {extra}' if extra else ''}"
        )
    if errors or not result.get("success", False):
        raise Rejected(f"{SERVICE}: {len(errors)} saved object(s) were not imported (see the lines above)")
