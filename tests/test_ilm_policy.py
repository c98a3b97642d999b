"""The ILM policy file, read by Elasticsearch's own policy parser (x-pack-core, from the test distribution).

The test distribution has no ILM module, so its REST API cannot take the policy; the
parser and validation behind ``PUT _ilm/policy/<name>`` live in x-pack-core and run here
through the engine helper (``harness.engines``).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.engines import engines

pytestmark = [pytest.mark.jvm]

REPO = Path(__file__).resolve().parents[1]
POLICY = REPO / "elasticsearch" / "ilm-policies" / "task-time.json"
RETENTION = REPO / "elasticsearch" / "component-templates" / "task-time-retention.json"


def test_the_policy_file_is_one_elasticsearch_accepts_under_the_name_the_indices_use() -> None:
    name = json.loads(RETENTION.read_text())["template"]["settings"]["index"]["lifecycle"]["name"]
    assert POLICY.stem == name  # bootstrap installs each policy under its file's name
    assert engines().ilm_policy_error(name, POLICY.read_text()) is None


def test_the_policy_deletes_indices_after_30_days() -> None:
    phases = json.loads(POLICY.read_text())["policy"]["phases"]
    assert phases["delete"] == {"min_age": "30d", "actions": {"delete": {}}}
    spelled_out = json.loads(POLICY.read_text())
    spelled_out["policy"]["phases"]["delete"]["min_age"] = "30 days"  # how a person might write it: refused
    assert "failed to parse [30 days]" in str(engines().ilm_policy_error("task-time", json.dumps(spelled_out)))


def _changed(path: list[str], value: object) -> str:
    body = json.loads(POLICY.read_text())
    target = body
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return json.dumps(body)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (_changed(["policy", "phases", "delete", "actions"], {"purge": {}}), "unknown field [purge]"),
        (_changed(["policy", "phases", "delete", "min_age"], "30x"), "unit is missing or unrecognized"),
        (_changed(["policy", "phases", "hot", "min_age"], "40d"), "delete phase (min_age: 30d) before the hot phase"),
        (
            _changed(["policy", "phases", "delete", "actions"], {"rollover": {"max_age": "1d"}}),
            "invalid action [rollover] defined in phase [delete]",
        ),
        (_changed(["policy", "phases", "later"], {"actions": {}}), "does not support phase [later]"),
        (_changed(["policy", "retention"], "30d"), "unknown field [retention]"),
        ('{"policy": {"phases": ', "Unexpected end-of-input"),
    ],
)
def test_a_policy_elasticsearch_would_refuse_is_refused(body: str, reason: str) -> None:
    error = engines().ilm_policy_error("task-time", body)
    assert error is not None and reason in error, error


def test_a_policy_name_elasticsearch_would_refuse_is_refused() -> None:
    error = engines().ilm_policy_error("Task Time", POLICY.read_text())
    assert error is not None and "invalid policy name" in error, error
