"""The files bootstrap installs: read from ``elasticsearch/`` and ``kibana/``, never from Python.

Each asset carries a digest of its content. Bootstrap stores the digest with what it
installs (in ``_meta``, role metadata or a saved object's description) and compares it
on the next run: equal digests mean unchanged, so a second run changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .report import UsageError

ASSETS_ENV = "TASK_TIME_ASSETS"
MANAGED_BY = "rq-task-time"

# (kind, folder under elasticsearch/), in the order they must be installed.
ELASTICSEARCH_KINDS = (
    ("role", "roles"),
    ("user", "users"),
    ("ILM policy", "ilm-policies"),
    ("component template", "component-templates"),
    ("index template", "index-templates"),
)


def digest(content: Any) -> str:
    """A short, formatting-independent fingerprint of JSON content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Asset:
    """One Elasticsearch object to install, as read from its file."""

    kind: str
    name: str
    path: Path
    body: dict[str, Any]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest(self.body))

    @property
    def version(self) -> int | None:
        return self.body.get("version")

    @property
    def needs_ilm(self) -> bool:
        """True for policies and for templates whose settings name a lifecycle policy."""
        settings = self.body.get("template", {}).get("settings", {})
        return (
            self.kind == "ILM policy" or "lifecycle" in settings.get("index", {}) or "index.lifecycle.name" in settings
        )


@dataclass(frozen=True)
class SavedObject:
    """One Kibana saved object line of an ndjson file."""

    path: Path
    line: int
    body: dict[str, Any]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", digest(self.body))

    @property
    def key(self) -> tuple[str, str]:
        return self.body["type"], self.body["id"]

    @property
    def title(self) -> str:
        return self.body.get("attributes", {}).get("title", self.body["id"])


def find_assets(explicit: str | None = None) -> Path:
    """The folder holding ``elasticsearch/`` and ``kibana/``: ``explicit`` (``--assets`` or
    ``TASK_TIME_ASSETS``), else the checkout this package was imported from."""
    root = Path(explicit) if explicit else Path(__file__).resolve().parents[2]
    if (root / "elasticsearch").is_dir() and (root / "kibana").is_dir():
        return root
    if explicit:
        raise UsageError(f"{root} has no elasticsearch/ and kibana/ folders (from --assets or {ASSETS_ENV})")
    raise UsageError(f"cannot find the elasticsearch/ and kibana/ folders: run from a checkout or set {ASSETS_ENV}")


def _read_json(path: Path, root: Path) -> dict[str, Any]:
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path.relative_to(root)}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    if not isinstance(content, dict):
        raise UsageError(f"{path.relative_to(root)}: expected a JSON object")
    return content


def load_elasticsearch_assets(root: Path) -> list[Asset]:
    """Every Elasticsearch asset, in install order (roles and users first, index templates last)."""
    assets = []
    for kind, folder in ELASTICSEARCH_KINDS:
        for path in sorted((root / "elasticsearch" / folder).glob("*.json")):
            assets.append(Asset(kind, path.stem, path, _read_json(path, root)))
    return assets


def load_saved_objects(root: Path) -> list[SavedObject]:
    """Every saved object of every ``kibana/*.ndjson`` file."""
    objects: list[SavedObject] = []
    seen: set[tuple[str, str]] = set()
    for path in sorted((root / "kibana").glob("*.ndjson")):
        for number, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not text.strip():
                continue
            where = f"{path.relative_to(root)}:{number}"
            try:
                body = json.loads(text)
            except json.JSONDecodeError as exc:
                raise UsageError(f"{where}: invalid JSON: {exc.msg}") from None
            if not isinstance(body, dict) or not {"id", "type", "attributes"} <= body.keys():
                raise UsageError(f"{where}: a saved object needs id, type and attributes")
            saved = SavedObject(path, number, body)
            if saved.key in seen:
                raise UsageError(f"{where}: {saved.key[0]} {saved.key[1]!r} appears twice")
            seen.add(saved.key)
            objects.append(saved)
    return objects
