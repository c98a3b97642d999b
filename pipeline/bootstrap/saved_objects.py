"""Kibana saved objects, one readable file each: ``kibana/<type>/<id>.json``.

Kibana keeps some attributes as JSON text inside the object (``panelsJSON``,
``searchSourceJSON``, a data view's ``fieldFormatMap`` …). In the files they are real
nested JSON, pretty-printed with sorted keys, so a change to a dashboard is a readable
diff. ``encode`` turns a file's object into what Kibana's import API takes; ``decode``
turns what its export API returns back into the file's form. ``decode(encode(x)) == x``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .assets import MANAGED_BY, Digested, read_json_object, relative
from .errors import UsageError

# Attributes Kibana stores as JSON text, per saved-object type (dotted paths below ``attributes``).
ENCODED_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "index-pattern": ("fieldFormatMap", "fields", "runtimeFieldMap", "fieldAttrs", "sourceFilters", "typeMeta"),
    "search": ("kibanaSavedObjectMeta.searchSourceJSON",),
    "visualization": ("visState", "uiStateJSON", "kibanaSavedObjectMeta.searchSourceJSON"),
    "dashboard": (
        "optionsJSON",
        "panelsJSON",
        "kibanaSavedObjectMeta.searchSourceJSON",
        "controlGroupInput.panelsJSON",
        "controlGroupInput.ignoreParentSettingsJSON",
    ),
}
# Set by Kibana on every save or export; they say nothing about the object itself.
VOLATILE = ("updated_at", "updated_by", "created_at", "created_by", "version", "namespaces")
MARKER = re.compile(rf" ?\[{re.escape(MANAGED_BY)} ([0-9a-f]{{16}})\]$")


@dataclass(frozen=True)
class SavedObject(Digested):
    """One Kibana saved object, as its file holds it (nested JSON decoded)."""

    path: Path
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return self.body["type"], self.body["id"]


def _holder(attributes: dict[str, Any], dotted: str) -> tuple[dict[str, Any] | None, str]:
    *parents, last = dotted.split(".")
    holder: Any = attributes
    for key in parents:
        holder = holder.get(key) if isinstance(holder, dict) else None
    return (holder if isinstance(holder, dict) else None), last


def _copy(body: dict[str, Any]) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(body))
    return copied


def encode(body: dict[str, Any]) -> dict[str, Any]:
    """The object as Kibana's import API takes it: nested attributes as compact JSON text."""
    result = _copy(body)
    for dotted in ENCODED_ATTRIBUTES.get(result.get("type", ""), ()):
        holder, key = _holder(result.get("attributes", {}), dotted)
        if holder is not None and key in holder and not isinstance(holder[key], str):
            holder[key] = json.dumps(holder[key], ensure_ascii=False, separators=(",", ":"))
    return result


def decode(body: dict[str, Any]) -> dict[str, Any]:
    """The object as its file holds it: nested JSON text parsed, Kibana's bookkeeping and our marker left out."""
    result = {key: value for key, value in _copy(body).items() if key not in VOLATILE}
    attributes = result.get("attributes", {})
    for dotted in ENCODED_ATTRIBUTES.get(result.get("type", ""), ()):
        holder, key = _holder(attributes, dotted)
        if holder is not None and isinstance(holder.get(key), str):
            try:
                value = json.loads(holder[key])
            except ValueError:
                continue
            if not isinstance(value, str):
                holder[key] = value
    description = attributes.get("description")
    if isinstance(description, str) and MARKER.search(description):
        stripped = MARKER.sub("", description)
        if stripped:
            attributes["description"] = stripped
        else:
            del attributes["description"]
    return result


def marked(saved: SavedObject) -> dict[str, Any]:
    """The object as imported: encoded, its description ending in the marker with its digest.

    Data views have no description; bootstrap compares their attributes instead.
    """
    body = encode(saved.body)
    attributes = body["attributes"]
    if body["type"] != "index-pattern":
        attributes["description"] = f"{attributes.get('description', '')} [{MANAGED_BY} {saved.digest}]".lstrip()
    return body


def object_path(root: Path, type_: str, id_: str) -> Path:
    return root / "kibana" / type_ / f"{id_}.json"


def load_saved_objects(root: Path) -> list[SavedObject]:
    """Every ``kibana/<type>/<id>.json``, data views first (others refer to them), then by type and id."""
    objects = []
    for path in sorted((root / "kibana").glob("*/*.json")):
        if path.parent.name == "config":
            continue
        where = relative(path, root)
        body = read_json_object(path, root)
        if not isinstance(body.get("attributes"), dict) or not isinstance(body.get("references", []), list):
            raise UsageError(f"{where}: a saved object needs an 'attributes' object and a 'references' list")
        if (body.get("type"), body.get("id")) != (path.parent.name, path.stem):
            raise UsageError(
                f"{where}: type and id must match the file's folder and name ({path.parent.name}, {path.stem})"
            )
        objects.append(SavedObject(path, body))
    return sorted(objects, key=lambda o: (o.key[0] != "index-pattern", o.key))


def file_text(body: dict[str, Any]) -> str:
    """How an object is written: pretty-printed, sorted keys, UTF-8, final newline."""
    return json.dumps(body, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_object(root: Path, body: dict[str, Any]) -> tuple[Path, bool]:
    """Write an object in file form into the layout; return its path and whether the file changed."""
    path = object_path(root, body["type"], body["id"])
    text = file_text(body)
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return path, False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path, True
