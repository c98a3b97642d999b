"""Run the filter and output stages of ``logstash/pipeline/task-time.conf`` in Python.

Logstash cannot run on these machines, so the tests read the pipeline config itself: a
parser for Logstash's config language, and an interpreter for exactly the plugins and
conditions the pipeline uses (grok through ``pygrok``, date, mutate, the output's index
name). A plugin, option or condition it does not know fails loudly: a change to the config
cannot slip past the tests unexamined.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from pygrok import Grok

CONFIG = Path(__file__).resolve().parents[2] / "logstash" / "pipeline" / "task-time.conf"

# ---------------------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<arrow>=>)
  | (?P<op>==|!=|=~|!~)
  | (?P<punct>[{}\[\],])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_@][\w@.-]*)
    """,
    re.VERBOSE,
)


@dataclass
class Plugin:
    name: str
    options: dict[str, Any]


@dataclass
class Conditional:
    branches: list[tuple[str | None, list[Plugin | Conditional]]] = field(default_factory=list)


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens, position = [], 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match:
            raise SyntaxError(f"unexpected {text[position : position + 20]!r} at offset {position}")
        position = match.end()
        if match.lastgroup != "space":
            tokens.append((match.lastgroup, match.group()))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.index = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (value is not None and token[1] != value):
            raise SyntaxError(f"expected {value!r}, found {token}")
        self.index += 1
        return token

    def config(self) -> dict[str, list[Plugin | Conditional]]:
        sections: dict[str, list[Plugin | Conditional]] = {}
        while self.peek():
            name = self.take()[1]
            self.take("{")
            sections.setdefault(name, []).extend(self.block())
        return sections

    def block(self) -> list[Plugin | Conditional]:
        items: list[Plugin | Conditional] = []
        while self.peek()[1] != "}":  # type: ignore[index]
            word = self.take()[1]
            if word == "if":
                items.append(self.conditional())
            else:
                self.take("{")
                items.append(Plugin(word, self.options()))
        self.take("}")
        return items

    def conditional(self) -> Conditional:
        result = Conditional()
        condition = self.condition()
        result.branches.append((condition, self.block()))
        while self.peek() and self.peek()[1] == "else":  # type: ignore[index]
            self.take("else")
            if self.peek()[1] == "if":  # type: ignore[index]
                self.take("if")
                condition = self.condition()
            else:
                self.take("{")
                condition = None
            result.branches.append((condition, self.block()))
        return result

    def condition(self) -> str:
        words = []
        while self.peek()[1] != "{":  # type: ignore[index]
            words.append(self.take()[1])
        self.take("{")
        return " ".join(words).replace("[ ", "[").replace(" ]", "]")

    def options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        while self.peek()[1] != "}":  # type: ignore[index]
            key = self.value()
            self.take("=>")
            options[key] = self.value()
        self.take("}")
        return options

    def value(self) -> Any:
        kind, text = self.take()
        if kind == "string":
            return text[1:-1]  # config.support_escapes is off: backslashes stay as written
        if kind == "number":
            return float(text) if "." in text else int(text)
        if text == "[":
            values = []
            while self.peek()[1] != "]":  # type: ignore[index]
                values.append(self.value())
                if self.peek()[1] == ",":  # type: ignore[index]
                    self.take(",")
            self.take("]")
            return values
        if text == "{":
            return self.options()
        return text  # bareword


def parse(text: str) -> dict[str, list[Plugin | Conditional]]:
    """The config's sections (input, filter, output), each a list of plugins and conditionals."""
    return _Parser(text).config()


def load(path: Path = CONFIG) -> dict[str, list[Plugin | Conditional]]:
    return parse(path.read_text())


def plugins(items: list[Plugin | Conditional], name: str) -> Iterator[Plugin]:
    """Every plugin called ``name``, in order, inside conditionals too."""
    for item in items:
        if isinstance(item, Plugin):
            if item.name == name:
                yield item
        else:
            for _, body in item.branches:
                yield from plugins(body, name)


def line_grok(config: dict[str, list[Plugin | Conditional]] | None = None) -> Plugin:
    """The grok that reads the whole line (``id => "task_time_line"``)."""
    config = load() if config is None else config
    [grok] = [p for p in plugins(config["filter"], "grok") if p.options.get("id") == "task_time_line"]
    return grok


# ------------------------------------------------------------------------- running

_ENV = re.compile(r"\$\{(\w+)(?::([^}]*))?\}")


def substitute(value: str, environ: Mapping[str, str] | None = None) -> str:
    """Logstash's ``${VAR}`` / ``${VAR:default}`` substitution; an unset VAR without default is an error."""
    environ = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in environ:
            return environ[name]
        if default is None:
            raise KeyError(f"${{{name}}} is not set and has no default")
        return default

    return _ENV.sub(replace, value)


def _get(event: dict[str, Any], reference: str) -> Any:
    value: Any = event
    for key in re.findall(r"\[([^\]]+)\]", reference) or [reference]:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value


def _set(event: dict[str, Any], reference: str, value: Any) -> None:
    keys = re.findall(r"\[([^\]]+)\]", reference) or [reference]
    for key in keys[:-1]:
        event = event.setdefault(key, {})
    event[keys[-1]] = value


def _remove(event: dict[str, Any], reference: str) -> None:
    keys = re.findall(r"\[([^\]]+)\]", reference) or [reference]
    for key in keys[:-1]:
        event = event.get(key, {})
    event.pop(keys[-1], None)


def _tag(event: dict[str, Any], tags: list[str]) -> None:
    existing = event.setdefault("tags", [])
    existing.extend(tag for tag in tags if tag not in existing)


_CONDITION = re.compile(r'^"([^"]+)" (not )?in \[(\w+)\]$')


def _holds(condition: str, event: dict[str, Any]) -> bool:
    match = _CONDITION.match(condition)
    if not match:
        raise NotImplementedError(f"condition the simulator does not know: {condition}")
    value, negate, field_name = match.groups()
    present = value in (event.get(field_name) or [])
    return not present if negate else present


_JODA = [("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H"), ("mm", "%M"), ("ss", "%S"), ("SSS", "%f")]


def _strptime_format(joda: str) -> str:
    """The strptime equivalent of the Joda patterns the config uses (others are refused)."""
    for token, directive in _JODA:
        joda = joda.replace(token, directive)
    if re.search(r"(?<!%)[A-Za-z]", joda):
        raise NotImplementedError(f"Joda pattern the simulator does not know: {joda}")
    return joda


class Pipeline:
    """The filter and output stages of the config, runnable on one ``message`` at a time."""

    def __init__(self, path: Path = CONFIG, environ: Mapping[str, str] | None = None) -> None:
        self.sections = load(path)
        self.environ = dict(os.environ if environ is None else environ)
        self._groks: dict[int, Grok] = {}

    def grok(self, plugin: Plugin) -> Grok:
        key = id(plugin)
        if key not in self._groks:
            [(source, pattern)] = plugin.options["match"].items()
            assert source == "message"
            # (?a): Logstash's regex engine (Joni, Ruby syntax) gives \d, \s and \w their ASCII
            # meaning; Python's default is Unicode.
            self._groks[key] = Grok("(?a)" + pattern, custom_patterns=plugin.options.get("pattern_definitions", {}))
        return self._groks[key]

    def run(
        self,
        message: str,
        received: datetime | None = None,
        path: str = "/var/log/rq-task-time/task-time.log",
        host: str = "logstash",
    ) -> dict[str, Any]:
        """The event the pipeline makes of one line read from ``path``, with ``[@metadata][_index]``."""
        # What the file input and its plain codec set under ECS (v8) before the filters run.
        event: dict[str, Any] = {
            "message": message,
            "@timestamp": received or datetime.now(UTC),
            "@version": "1",
            "event": {"original": message},
            "host": {"name": host},
            "log": {"file": {"path": path}},
        }
        self._apply(self.sections["filter"], event)
        [output] = [p for p in plugins(self.sections["output"], "elasticsearch")]
        metadata = event.setdefault("@metadata", {})
        metadata["_index"] = self.sprintf(output.options["index"], event)
        if "document_id" in output.options:
            metadata["_id"] = self.sprintf(output.options["document_id"], event)
        return event

    @staticmethod
    def sprintf(template: str, event: dict[str, Any]) -> str:
        """Logstash's ``%{[field]}`` and ``%{+yyyy.MM.dd}`` (of @timestamp, in UTC) references."""
        day = event["@timestamp"].astimezone(UTC).strftime("%Y.%m.%d")
        text = template.replace("%{+yyyy.MM.dd}", day)
        return re.sub(r"%\{(\[[^}]+\])\}", lambda m: str(_get(event, m.group(1))), text)

    def _apply(self, items: list[Plugin | Conditional], event: dict[str, Any]) -> None:
        for item in items:
            if isinstance(item, Conditional):
                for condition, body in item.branches:
                    if condition is None or _holds(condition, event):
                        self._apply(body, event)
                        break
                continue
            handler = getattr(self, f"_{item.name}", None)
            if handler is None:
                raise NotImplementedError(f"filter the simulator does not know: {item.name}")
            handler(item, event)

    def _grok(self, plugin: Plugin, event: dict[str, Any]) -> None:
        known = {"id", "match", "pattern_definitions", "tag_on_failure"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        captures = self.grok(plugin).match(event["message"])
        if captures is None:
            _tag(event, plugin.options.get("tag_on_failure", ["_grokparsefailure"]))
            return
        for name, value in captures.items():
            if value is not None:  # optional groups that did not take part are not set
                _set(event, name, value)

    def _date(self, plugin: Plugin, event: dict[str, Any]) -> None:
        known = {"id", "match", "timezone", "target", "tag_on_failure", "remove_field"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        source, *formats = plugin.options["match"]
        zone = substitute(plugin.options.get("timezone", "UTC"), self.environ)
        text = _get(event, source)
        for joda in formats:
            try:
                parsed = datetime.strptime(str(text), _strptime_format(joda))
            except ValueError:
                continue
            moment = parsed.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
            _set(event, plugin.options.get("target", "@timestamp"), moment)
            for reference in plugin.options.get("remove_field", []):
                _remove(event, reference)
            return
        _tag(event, plugin.options.get("tag_on_failure", ["_dateparsefailure"]))

    def _fingerprint(self, plugin: Plugin, event: dict[str, Any]) -> None:
        known = {"id", "source", "target", "method"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        assert plugin.options["method"] == "SHA256"
        value = str(_get(event, plugin.options["source"]))
        _set(event, plugin.options["target"], hashlib.sha256(value.encode()).hexdigest())

    def _mutate(self, plugin: Plugin, event: dict[str, Any]) -> None:
        for option, value in plugin.options.items():
            if option == "add_field":
                for reference, text in value.items():
                    _set(event, reference, text)
            elif option == "remove_field":
                for reference in value:
                    _remove(event, reference)
            else:
                raise NotImplementedError(f"mutate option the simulator does not know: {option}")

    def _truncate(self, plugin: Plugin, event: dict[str, Any]) -> None:
        # logstash-filter-truncate: cut each string to length_bytes UTF-8 bytes, backing up
        # to the last whole character; add_tag only when some field was cut.
        known = {"id", "fields", "length_bytes", "add_tag"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        limit = plugin.options["length_bytes"]
        cut = False
        for reference in plugin.options["fields"]:
            value = _get(event, reference)
            if isinstance(value, str) and len(value.encode()) > limit:
                _set(event, reference, _cut_utf8(value, limit))
                cut = True
        if cut:
            _tag(event, plugin.options.get("add_tag", []))


def _cut_utf8(value: str, limit: int) -> str:
    """The longest prefix of ``value`` of at most ``limit`` UTF-8 bytes that ends on a whole character."""
    data = value.encode()
    for length in range(limit, 0, -1):
        try:
            return data[:length].decode()
        except UnicodeDecodeError:
            continue
    return ""


def document(event: dict[str, Any]) -> dict[str, Any]:
    """What the Elasticsearch output sends: the event without ``@metadata``, timestamp as ISO 8601."""
    body = {k: v for k, v in event.items() if k != "@metadata"}
    body["@timestamp"] = event["@timestamp"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body
