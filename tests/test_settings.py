"""One home for every environment variable: ``pipeline.settings``, held to the docs and to ``--help``."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.bootstrap import cli as bootstrap_cli
from pipeline.monitor import options as monitor_options

pytestmark = [pytest.mark.unit]

REPO = Path(__file__).resolve().parents[1]
TABLE_HEADER = "| variable | default | meaning |"
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def variable_tables(path: Path) -> list[tuple[str, str, int]]:
    """``(variable, default cell, line number)`` of every row of every variable table in ``path``."""
    rows, in_table = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip() == TABLE_HEADER:
            in_table = True
            continue
        if not in_table:
            continue
        if not line.startswith("|"):
            in_table = False
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if set(cells[0]) <= {"-", ":"}:
            continue
        variable = re.fullmatch(r"`([A-Z0-9_]+)`", cells[0])
        assert variable, f"{path.name}:{number}: the first cell of a variable table is one `VARIABLE`: {line}"
        rows.append((variable[1], cells[1], number))
    return rows


def documented_default(setting: settings.Setting) -> set[str]:
    """The default cells that state ``setting``'s default."""
    shown = setting.shown_default()
    cells = {f"`{shown}`"}
    if setting.default is None and setting.shown is None:
        cells = {"none"}
    elif setting.shown is not None:
        cells.add(f"({shown})")
    return cells


BY_VARIABLE = {setting.variable: setting for setting in settings.SETTINGS}


def test_every_setting_has_its_own_variable() -> None:
    assert len(BY_VARIABLE) == len(settings.SETTINGS)
    assert all(re.fullmatch(r"[A-Z][A-Z0-9_]+", variable) for variable in BY_VARIABLE)


@pytest.mark.parametrize("path", DOCUMENTS, ids=lambda path: path.name)
def test_variable_tables_state_the_settings_defaults(path: Path) -> None:
    for variable, default, number in variable_tables(path):
        assert variable in BY_VARIABLE, f"{path.name}:{number}: {variable} is not in pipeline/settings.py"
        expected = documented_default(BY_VARIABLE[variable])
        assert default in expected, f"{path.name}:{number}: {variable} defaults to {expected}, the table says {default}"


def test_the_configuration_page_lists_every_setting_once() -> None:
    rows = variable_tables(REPO / "docs" / "configuration.md")
    assert sorted(variable for variable, _, _ in rows) == sorted(BY_VARIABLE)


def test_the_readme_and_the_configuration_page_have_variable_tables() -> None:
    assert variable_tables(REPO / "README.md")
    assert all(variable in BY_VARIABLE for variable, _, _ in variable_tables(REPO / "README.md"))


def help_text(parse: object, *args: object) -> str:
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
        parse(["--help"], *args)  # type: ignore[operator]
    return " ".join(out.getvalue().split())


def test_the_monitors_help_names_each_variable_and_its_default() -> None:
    text = help_text(monitor_options.parse_args, {})
    for setting in (settings.REDIS_URL, settings.MONITOR_NAME, settings.MONITOR_INTERVAL, settings.WORKER_TTL):
        assert f"({setting.variable}; default {setting.shown_default()})" in text
    assert text.count("; default ") == 15 + 6  # every option with a variable (+ Celery's six)


def test_bootstraps_help_names_each_variable() -> None:
    text = help_text(bootstrap_cli.parse_args, {})
    for option, setting in bootstrap_cli._OPTIONS:
        assert option in text and f"[{setting.variable}]" in text
    assert "(default http://localhost:9200) [ES_URL]" in text
    assert "(default 300) [BOOTSTRAP_TIMEOUT]" in text


def test_a_variable_set_in_the_environment_is_the_default_of_its_option() -> None:
    environ = {settings.MONITOR_INTERVAL.variable: "2.5", settings.HEAD.variable: "4", settings.REDIS_URL.variable: " "}
    config = monitor_options.parse_args([], environ)
    assert (config.interval, config.head, config.url) == (2.5, 4, settings.REDIS_URL.default)
    assert config.thresholds.memory_warn == settings.MEMORY_WARN.default
    assert config.worker_ttl == settings.WORKER_TTL.default
    assert re.fullmatch(r".+\.[0-9]+", config.name)
