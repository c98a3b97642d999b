"""The golden pairs: lines in ``tests/golden/<name>.log``, the documents they become in ``<name>.expected.json``.

    python -m tests.support.golden            # exit 1 and name the pairs whose documents differ
    python -m tests.support.golden --write    # rewrite the expected files from the engines

The expected documents are what the pipeline config makes of the lines with Logstash's
regex engine and date library (``tests.support.logstash``); review the diff before
committing a rewrite.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support import logstash

FOLDER = Path(__file__).resolve().parents[1] / "golden"
# Each pair with the environment Logstash runs with (the .conf reads TASK_TIME_TZ).
PAIRS: dict[str, dict[str, str]] = {
    "task-time": {},
    "task-time.europe-paris": {"TASK_TIME_TZ": "Europe/Paris"},
}
# When the file input read the lines: only visible in documents whose time cannot be read.
RECEIVED = datetime(2026, 11, 22, tzinfo=UTC)


def lines(name: str) -> list[str]:
    return (FOLDER / f"{name}.log").read_text(encoding="utf-8").split("\n")[:-1]


def produce(name: str) -> list[dict[str, Any]]:
    """What the pipeline sends to Elasticsearch for each line of the pair's log: index, id, document."""
    events = logstash.Pipeline(environ=PAIRS[name]).run_many(lines(name), received=RECEIVED)
    return [
        {"index": e["@metadata"]["_index"], "id": e["@metadata"]["_id"], "document": logstash.document(e)}
        for e in events
    ]


def expected(name: str) -> list[dict[str, Any]]:
    return json.loads((FOLDER / f"{name}.expected.json").read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    if argv not in ([], ["--write"]):
        print("usage: python -m tests.support.golden [--write]", file=sys.stderr)
        return 2
    differ = []
    for name in PAIRS:
        documents = produce(name)
        if argv:
            text = json.dumps(documents, indent=1, ensure_ascii=False) + "\n"
            (FOLDER / f"{name}.expected.json").write_text(text, encoding="utf-8")
        elif documents != expected(name):
            differ.append(name)
    for name in differ:
        print(f"golden: {name}.expected.json differs from what the engines produce", file=sys.stderr)
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
