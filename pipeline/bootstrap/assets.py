"""The files bootstrap installs: read from ``elasticsearch/`` and ``kibana/``, never from Python.

The folders are found in this order: ``--assets`` / ``TASK_TIME_ASSETS``; the checkout this
package runs from; the copy the wheel carries (``pipeline/bootstrap/bundled/``). Every file
is read and its shape checked before any service is contacted, so a bad file is one line
and exit 2.

Each asset carries a digest of its content. Bootstrap stores the digest with what it
installs (in ``_meta``, role metadata or a saved object's description) and compares it
on the next run: equal digests mean unchanged, so a second run changes nothing.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from pipeline import settings

from .errors import UsageError

ASSETS_ENV = settings.ASSETS.variable
MANAGED_BY = "rq-task-time"

# (kind, folder under elasticsearch/), in the order they must be installed.
ELASTICSEARCH_KINDS = (
    ("role", "roles"),
    ("user", "users"),
    ("ILM policy", "ilm-policies"),
    ("component template", "component-templates"),
    ("index template", "index-templates"),
)

# Top-level keys whose JSON type bootstrap relies on, per kind; Elasticsearch checks the rest.
_SHAPES: dict[str, dict[str, type | tuple[type, ...]]] = {
    "role": {"cluster": list, "indices": list, "applications": list, "metadata": dict, "run_as": list},
    "user": {"roles": list, "full_name": str, "email": str, "metadata": dict, "enabled": bool},
    "ILM policy": {"policy": dict},
    "component template": {"template": dict, "version": int, "_meta": dict},
    "index template": {
        "index_patterns": (list, str),
        "composed_of": list,
        "template": dict,
        "priority": int,
        "version": int,
        "_meta": dict,
    },
}
_REQUIRED = {"ILM policy": ("policy",), "component template": ("template",), "index template": ("index_patterns",)}
_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", int: "a number", bool: "true or false"}


def digest(content: Any) -> str:
    """A short, formatting-independent fingerprint of JSON content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class Digested:
    """Something read from a file whose JSON ``body`` is compared with what is installed by its digest."""

    body: dict[str, Any]

    @cached_property
    def digest(self) -> str:
        return digest(self.body)


@dataclass(frozen=True)
class Asset(Digested):
    """One Elasticsearch object to install, as read from its file."""

    kind: str
    name: str
    path: Path
    body: dict[str, Any]

    @property
    def version(self) -> int | None:
        return self.body.get("version")

    @property
    def file(self) -> str:
        """The file as named in messages: ``<folder>/<name>.json``."""
        return f"{self.path.parent.name}/{self.path.name}"

    @property
    def needs_ilm(self) -> bool:
        """True for policies and for templates whose settings name a lifecycle policy."""
        settings = self.body.get("template", {}).get("settings", {})
        return (
            self.kind == "ILM policy" or "lifecycle" in settings.get("index", {}) or "index.lifecycle.name" in settings
        )


def _bundled() -> Path | None:
    """The folders as the wheel carries them, when installed as plain files."""
    bundled = resources.files("pipeline.bootstrap") / "bundled"
    return bundled if isinstance(bundled, Path) else None


def is_bundled(root: Path) -> bool:
    """Whether ``root`` is the wheel's copy (not a checkout or a folder given by the user)."""
    return root == _bundled()


def find_assets(explicit: str | None = None) -> Path:
    """The folder holding ``elasticsearch/`` and ``kibana/`` (see the module docstring)."""
    if explicit:
        root = Path(explicit)
        if (root / "elasticsearch").is_dir() and (root / "kibana").is_dir():
            return root
        raise UsageError(f"{root} has no elasticsearch/ and kibana/ folders (from --assets or {ASSETS_ENV})")
    checkout = Path(__file__).resolve().parents[2]
    if (checkout / "pyproject.toml").is_file() and (checkout / "kibana").is_dir():
        return checkout
    bundled = _bundled()
    if bundled is not None and (bundled / "elasticsearch").is_dir() and (bundled / "kibana").is_dir():
        return bundled
    raise UsageError(f"cannot find the elasticsearch/ and kibana/ folders: reinstall the package or set {ASSETS_ENV}")


def relative(path: Path, root: Path) -> str:
    """``path`` as shown in messages: relative to the assets folder."""
    try:
        return str(path.relative_to(root))
    except ValueError:
        return str(path)


def read_json_object(path: Path, root: Path) -> dict[str, Any]:
    """A JSON object from ``path``; anything else is a one-line ``UsageError``."""
    where = relative(path, root)
    if not path.is_file():
        raise UsageError(f"{where}: not a file (a folder named *.json?)")
    try:
        content = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where}: not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"{where}: invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except OSError as exc:
        raise UsageError(f"{where}: cannot be read: {exc.strerror}") from None
    if not isinstance(content, dict):
        raise UsageError(f"{where}: expected a JSON object")
    return content


def check_shape(kind: str, body: dict[str, Any], where: str) -> None:
    """Refuse a body whose top-level keys have the wrong JSON type, before anything is sent."""
    for key in _REQUIRED.get(kind, ()):
        if key not in body:
            raise UsageError(f"{where}: a {kind} needs {key!r}")
    for key, expected in _SHAPES[kind].items():
        if key not in body:
            continue
        types = expected if isinstance(expected, tuple) else (expected,)
        value = body[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            wanted = " or ".join(_JSON_TYPES[t] for t in types)
            raise UsageError(f"{where}: {key!r} must be {wanted}, not {type(value).__name__}")


def load_elasticsearch_assets(root: Path) -> list[Asset]:
    """Every Elasticsearch asset, in install order (roles and users first, index templates last)."""
    assets = []
    for kind, folder in ELASTICSEARCH_KINDS:
        for path in sorted((root / "elasticsearch" / folder).glob("*.json")):
            body = read_json_object(path, root)
            check_shape(kind, body, relative(path, root))
            assets.append(Asset(kind, path.stem, path, body))
    return assets
