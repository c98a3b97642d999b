"""The test tiers: every test says with markers what it needs, and the markers are held to what it does.

``unit`` needs nothing but ``pip install -e '.[test]'``; ``redis``, ``elasticsearch``, ``jvm``
``compose``, ``prometheus`` and ``rabbitmq`` name the services and tools a test uses (pyproject.toml registers them).
Two checks keep the markers true (``tests/conftest.py`` calls them):

- at collection, ``marker_problems``: a test without a tier marker, a ``unit`` test with
  another tier, or a test that requests a service fixture its markers do not name;
- while a test runs, ``guard_processes``: starting ``redis-server``, Elasticsearch, a JDK
  tool, Maven or Go, or calling Logstash's engines, from a test not marked for it fails
  that test with a message saying which marker it needs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable
from typing import Any

import pytest

# The markers, described where pyproject.toml registers them.
TIERS = ("unit", "redis", "elasticsearch", "jvm", "compose", "prometheus", "rabbitmq")

# Fixtures that give a test a service, and the marker a test must carry to request them.
SERVICE_FIXTURES = {
    "redis_server": "redis",
    "redis": "redis",
    "redis_url": "redis",
    "monitor_user_url": "redis",
    "elasticsearch": "elasticsearch",
    "es": "elasticsearch",
    "writer": "elasticsearch",
    "engines": "jvm",
    # tests/test_compose.py: docker-compose.yml as compose-go loads it.
    "project": "compose",
    "rabbitmq_node": "rabbitmq",
    "rabbitmq": "rabbitmq",
}

# Programs a test may start only with one of these markers (matched on the executable's name).
PROGRAMS: dict[str, tuple[str, ...]] = {
    "redis-server": ("redis",),
    "java": ("jvm", "elasticsearch"),
    "javac": ("jvm", "elasticsearch"),
    "mvn": ("jvm", "elasticsearch"),
    "go": ("compose",),
    "prometheus": ("prometheus",),
    "promtool": ("prometheus",),
    "rabbitmq-server": ("rabbitmq",),
    "rabbitmqctl": ("rabbitmq",),
}
PROGRAM_PREFIXES: dict[str, tuple[str, ...]] = {"elasticsearch": ("elasticsearch",)}


def tiers_of(item: pytest.Item) -> set[str]:
    """The tier markers a test carries (from the test, its class and its module)."""
    return {mark.name for mark in item.iter_markers() if mark.name in TIERS}


def marker_problems(items: Iterable[pytest.Item]) -> list[str]:
    """One line per test whose markers are missing or contradict the fixtures it requests."""
    problems = []
    for item in items:
        tiers = tiers_of(item)
        if not tiers:
            problems.append(f"{item.nodeid}: no tier marker (one or more of {', '.join(TIERS)})")
            continue
        if "unit" in tiers and len(tiers) > 1:
            problems.append(f"{item.nodeid}: marked unit and {', '.join(sorted(tiers - {'unit'}))}")
        for fixture in getattr(item, "fixturenames", ()):
            needed = SERVICE_FIXTURES.get(fixture)
            if needed is None or needed in tiers:
                continue
            if "unit" in tiers:
                problems.append(f"{item.nodeid}: a unit test requests the service fixture '{fixture}' ({needed})")
            else:
                problems.append(f"{item.nodeid}: requests the fixture '{fixture}' but is not marked '{needed}'")
    return problems


def _needed_for(argv: Any) -> tuple[str, tuple[str, ...]] | None:
    """The program ``argv`` starts and the markers that allow it, or None for any other program."""
    first = argv if isinstance(argv, str | bytes | os.PathLike) else next(iter(argv), "")
    name = os.path.basename(os.fsdecode(first))
    if name in PROGRAMS:
        return name, PROGRAMS[name]
    for prefix, markers in PROGRAM_PREFIXES.items():
        if name.startswith(prefix):
            return name, markers
    return None


class ProcessGuard:
    """Fails a running test that starts a service program or calls the engines without the marker for it."""

    def __init__(self) -> None:
        self.item: pytest.Item | None = None

    def check(self, what: str, allowed: tuple[str, ...]) -> None:
        if self.item is None:
            return
        tiers = tiers_of(self.item)
        if not tiers & set(allowed):
            wanted = " or ".join(repr(marker) for marker in allowed)
            pytest.fail(f"{self.item.nodeid} uses {what} but is not marked {wanted}", pytrace=False)


def guard_processes(guard: ProcessGuard) -> Callable[[], None]:
    """Route ``subprocess.Popen`` and the engines' calls through ``guard``; returns the undo."""
    import harness.engines

    popen_init = subprocess.Popen.__init__
    engines_call = harness.engines.Engines.call

    def checked_init(self: subprocess.Popen[Any], args: Any, *rest: Any, **options: Any) -> None:
        if (needed := _needed_for(args)) is not None:
            guard.check(f"the program {needed[0]}", needed[1])
        popen_init(self, args, *rest, **options)

    def checked_call(self: harness.engines.Engines, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        guard.check("Logstash's engines (harness.engines)", ("jvm",))
        return engines_call(self, operations)

    subprocess.Popen.__init__ = checked_init  # type: ignore[method-assign]
    harness.engines.Engines.call = checked_call  # type: ignore[method-assign]

    def undo() -> None:
        subprocess.Popen.__init__ = popen_init  # type: ignore[method-assign]
        harness.engines.Engines.call = engines_call  # type: ignore[method-assign]

    return undo
