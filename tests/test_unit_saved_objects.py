"""Saved-object encoding: every object in kibana/ survives encode → decode, also as imported and exported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.bootstrap.assets import MANAGED_BY
from pipeline.bootstrap.saved_objects import ENCODED_ATTRIBUTES, decode, encode, load_saved_objects, marked

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
OBJECTS = load_saved_objects(REPO)


def test_kibana_holds_objects_of_every_encoded_type_but_none_of_them_empty() -> None:
    types = {saved.key[0] for saved in OBJECTS}
    assert {"index-pattern", "search", "dashboard"} <= types
    assert all(saved.body["attributes"] for saved in OBJECTS)


@pytest.mark.parametrize("saved", OBJECTS, ids=lambda saved: "/".join(saved.key))
def test_encode_then_decode_gives_the_file_back(saved: object) -> None:
    body = saved.body  # type: ignore[attr-defined]
    encoded = encode(body)
    assert decode(encoded) == body
    assert encode(encoded) == encoded  # already encoded attributes are left alone
    for dotted in ENCODED_ATTRIBUTES.get(body["type"], ()):
        *parents, last = dotted.split(".")
        holder = encoded["attributes"]
        for key in parents:
            holder = holder.get(key, {})
        if last in holder:
            assert isinstance(holder[last], str)


@pytest.mark.parametrize("saved", OBJECTS, ids=lambda saved: "/".join(saved.key))
def test_an_exported_object_decodes_to_its_file(saved: object) -> None:
    """What Kibana exports: the import's body (marker included) plus its bookkeeping, as JSON text."""
    imported = marked(saved)  # type: ignore[arg-type]
    exported = json.loads(json.dumps({**imported, "updated_at": "2026-01-01T00:00:00.000Z", "version": "WzEsMV0="}))
    exported["namespaces"] = ["default"]
    assert decode(exported) == saved.body  # type: ignore[attr-defined]


def test_the_marker_carries_the_digest_and_is_left_out_when_decoded() -> None:
    for saved in OBJECTS:
        attributes = marked(saved)["attributes"]
        if saved.key[0] == "index-pattern":
            assert "description" not in attributes  # data views are compared by their attributes
            continue
        before = saved.body["attributes"].get("description", "")
        assert attributes["description"] == f"{before} [{MANAGED_BY} {saved.digest}]".lstrip()
        assert len(saved.digest) == 16


def test_json_text_that_decodes_to_a_string_stays_text() -> None:
    body = {"type": "search", "id": "s", "attributes": {"kibanaSavedObjectMeta": {"searchSourceJSON": '"x"'}}}
    assert decode(body) == body
    broken = {"type": "search", "id": "s", "attributes": {"kibanaSavedObjectMeta": {"searchSourceJSON": "{"}}}
    assert decode(broken) == broken
