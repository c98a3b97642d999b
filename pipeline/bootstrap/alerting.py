"""Kibana alerting: the connector and rules in ``kibana/alerting/``, created through Kibana's API.

Rules are created with the alerting API rather than imported as saved objects: imported
rules come back disabled and without the API key they run with. Each rule and connector
has a fixed id, so a rerun finds what it created. A rule carries the tag
``rq-task-time:<digest>`` of its file; the same digest means unchanged, another one an
update. A rule someone disabled in Kibana stays disabled. Kibana runs rules only with a
permanent encryption key (``xpack.encryptedSavedObjects.encryptionKey``); without one, or
without the alerting plugin, the step is reported as skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assets import MANAGED_BY, Digested, read_json_object, relative
from .errors import Rejected, UsageError
from .kibana_client import SERVICE, KibanaClient, check_auth, message
from .progress import Progress

# What each file must hold, beyond ``id``; Kibana checks the rest.
_CONNECTOR_KEYS = {"connector_type_id": str, "name": str, "config": dict}
_RULE_KEYS = {"name": str, "rule_type_id": str, "consumer": str, "schedule": dict, "params": dict, "actions": list}
# What the update API takes; the rule type and consumer are fixed at creation.
_RULE_UPDATE_KEYS = ("name", "tags", "schedule", "params", "actions")
_TAG_PREFIX = f"{MANAGED_BY}:"


@dataclass(frozen=True)
class AlertingAsset(Digested):
    """A connector or rule as read from ``kibana/alerting/<kind>s/<id>.json``."""

    kind: str  # "connector" or "rule"
    path: Path
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return str(self.body["id"])

    @property
    def api(self) -> str:
        return f"/api/actions/connector/{self.id}" if self.kind == "connector" else f"/api/alerting/rule/{self.id}"


def _check(body: dict[str, Any], keys: Mapping[str, type], where: str, stem: str) -> None:
    if body.get("id") != stem:
        raise UsageError(f"{where}: 'id' must be the file's name ({stem})")
    for key, expected in keys.items():
        if not isinstance(body.get(key), expected):
            raise UsageError(f"{where}: {key!r} must be {'a string' if expected is str else f'a {expected.__name__}'}")


def load_alerting(root: Path) -> list[AlertingAsset]:
    """Connectors first (rules name them), then rules; each file checked before anything is sent."""
    found = []
    for kind, keys in (("connector", _CONNECTOR_KEYS), ("rule", _RULE_KEYS)):
        for path in sorted((root / "kibana" / "alerting" / f"{kind}s").glob("*.json")):
            body = read_json_object(path, root)
            _check(body, keys, relative(path, root), path.stem)
            found.append(AlertingAsset(kind, path, body))
    connectors = {a.id for a in found if a.kind == "connector"}
    for asset in found:
        for action in asset.body.get("actions", []) if asset.kind == "rule" else []:
            if action.get("id") not in connectors:
                where = relative(asset.path, root)
                raise UsageError(f"{where}: action names connector {action.get('id')!r}, which kibana/alerting lacks")
    return found


def rule_request(asset: AlertingAsset, create: bool) -> dict[str, Any]:
    """The body of the create (POST) or update (PUT) request for a rule, tagged with its digest."""
    body = {key: value for key, value in asset.body.items() if key != "id"}
    tags = [tag for tag in body.get("tags", []) if not str(tag).startswith(_TAG_PREFIX)]
    body["tags"] = [*tags, f"{_TAG_PREFIX}{asset.digest}"]
    if create:
        return {**body, "enabled": True}
    return {key: body[key] for key in _RULE_UPDATE_KEYS if key in body}


def connector_request(asset: AlertingAsset, create: bool) -> dict[str, Any]:
    """The body of the create or update request for a connector (no secrets: server-log needs none)."""
    body = {"name": asset.body["name"], "config": asset.body["config"], "secrets": asset.body.get("secrets", {})}
    return {**body, "connector_type_id": asset.body["connector_type_id"]} if create else body


def _unchanged(asset: AlertingAsset, installed: dict[str, Any]) -> bool:
    if asset.kind == "rule":
        tags: list[object] = installed.get("tags", [])
        return f"{_TAG_PREFIX}{asset.digest}" in tags
    same: bool = (
        installed.get("name") == asset.body["name"]
        and installed.get("connector_type_id") == asset.body["connector_type_id"]
        and (installed.get("config") or {}) == asset.body["config"]
    )
    return same


def alerting_unavailable(kibana: KibanaClient) -> str | None:
    """Why this Kibana cannot run the rules, or None when it can."""
    status, body = kibana.request("GET", "/api/alerting/_health")
    check_auth(status, body, "checking Kibana alerting")
    if status == 404:
        return "this Kibana has no alerting plugin"
    if status != 200 or not isinstance(body, dict):
        return f"alerting health check answered HTTP {status}: {message(body)}"
    if body.get("has_permanent_encryption_key") is False:
        return "Kibana has no xpack.encryptedSavedObjects.encryptionKey, so it cannot run rules"
    return None


def install_alerting(kibana: KibanaClient, assets: list[AlertingAsset], progress: Progress, dry_run: bool) -> None:
    """Create or update each connector and rule whose file changed; report every one."""
    if not assets:
        return
    reason = alerting_unavailable(kibana)
    if reason:
        for asset in assets:
            progress.outcome(SERVICE, f"{asset.kind} {asset.id}", "skipped", reason)
        return
    for asset in assets:
        what = f"{asset.kind} {asset.id}"
        status, installed = kibana.request("GET", asset.api)
        check_auth(status, installed, f"reading {what}")
        if status not in (200, 404):
            raise Rejected(f"{SERVICE}: reading {what} failed: HTTP {status}: {message(installed)}")
        create = status == 404
        if not create and _unchanged(asset, installed):
            progress.outcome(SERVICE, what, "unchanged")
            continue
        if not dry_run:
            request = rule_request if asset.kind == "rule" else connector_request
            status, answer = kibana.request("POST" if create else "PUT", asset.api, request(asset, create))
            check_auth(status, answer, f"installing {what}")
            if status != 200:
                where = f"kibana/alerting/{asset.kind}s/{asset.path.name}"
                raise Rejected(f"{SERVICE}: rejected {what} from {where}: HTTP {status}: {message(answer)}")
        progress.outcome(SERVICE, what, "created" if create else "updated")
