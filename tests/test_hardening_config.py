"""Durability and secret settings of the compose stack, on the project compose-go resolves."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_compose import project  # noqa: F401  (the compose-go fixture)

REPO = Path(__file__).resolve().parents[1]
KIBANA_KEYS = (
    "xpack.encryptedSavedObjects.encryptionKey",
    "xpack.security.encryptionKey",
    "xpack.reporting.encryptionKey",
)


@pytest.mark.unit
def test_the_persisted_queue_checkpoints_every_event() -> None:
    settings = yaml.safe_load((REPO / "logstash" / "config" / "logstash.yml").read_text())
    assert settings["queue.type"] == "persisted"
    assert settings["queue.checkpoint.writes"] == 1


@pytest.mark.compose
def test_kibana_gets_every_encryption_key_from_env(project: dict[str, Any]) -> None:  # noqa: F811
    settings = yaml.safe_load((REPO / "kibana" / "config" / "kibana.yml").read_text())
    environment = project["services"]["kibana"]["environment"]
    values = []
    for key in KIBANA_KEYS:
        match = re.fullmatch(r"\$\{(\w+)\}", settings[key])
        assert match, f"{key} must come from the environment, not the file"
        value = environment[match.group(1)]
        assert len(value) >= 32, f"{key}: Kibana needs 32 characters or more"
        values.append(value)
    assert len(set(values)) == len(values), "each key its own value"
