"""Write ``tests/golden/queue-monitor.expected.json`` from ``tests/golden/queue-monitor.log``.

    python -m tests.support.queue_monitor_golden

Runs each golden line through ``logstash/pipeline/queue-monitor.conf`` (with the same
interpreter the tests use). Review the diff by eye before committing it: the test then
holds the pipeline to it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support import logstash
from tests.support.monitor import CONFIG

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
LOG = GOLDEN / "queue-monitor.log"
EXPECTED = GOLDEN / "queue-monitor.expected.json"
# Logstash's time of reading: only lines whose own time cannot be read keep it.
RECEIVED = datetime(2026, 11, 22, tzinfo=UTC)
PATH = "/var/log/rq-task-time/queue-monitor.log"


def golden_lines() -> list[str]:
    return LOG.read_text(encoding="utf-8").split("\n")[:-1]


def documents(pipeline: logstash.Pipeline | None = None) -> list[dict[str, Any]]:
    """What the pipeline makes of each golden line: index, id and document."""
    pipeline = pipeline or logstash.Pipeline(path=CONFIG, environ={})
    result = []
    for text in golden_lines():
        event = pipeline.run(text, received=RECEIVED, path=PATH)
        result.append(
            {
                "index": event["@metadata"]["_index"],
                "id": event["@metadata"]["_id"],
                "document": logstash.document(event),
            }
        )
    return result


if __name__ == "__main__":
    EXPECTED.write_text(json.dumps(documents(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {EXPECTED}")
