"""Run the filter and output stages of ``logstash/pipeline/task-time.conf``.

Logstash cannot run on these machines, so the tests read the pipeline config itself: a
parser for Logstash's config language, and an interpreter for exactly the plugins and
conditions the pipeline uses. Grok and date run on Logstash's own engines (Joni and
Joda-Time, through ``tests.support.engines``); Python keeps only the plain field
operations (conditionals, mutate, fingerprint, the output's index and id). A plugin,
option or condition it does not know fails loudly: a change to the config cannot slip past
the tests unexamined.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support.engines import engines

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


class Pipeline:
    """The filter and output stages of the config, runnable on a batch of ``message`` lines."""

    def __init__(self, path: Path = CONFIG, environ: Mapping[str, str] | None = None) -> None:
        self.sections = load(path)
        self.environ = dict(os.environ if environ is None else environ)

    def run(
        self,
        message: str,
        received: datetime | None = None,
        path: str = "/var/log/rq-task-time/task-time.log",
        host: str = "logstash",
    ) -> dict[str, Any]:
        """The event the pipeline makes of one line read from ``path``, with ``[@metadata][_index]``."""
        return self.run_many([message], received, path, host)[0]

    def run_many(
        self,
        messages: list[str],
        received: datetime | None = None,
        path: str = "/var/log/rq-task-time/task-time.log",
        host: str = "logstash",
    ) -> list[dict[str, Any]]:
        """``run`` for many lines, each stage applied to all of them at once (one engine call per stage)."""
        # What the file input and its plain codec set under ECS (v8) before the filters run.
        events: list[dict[str, Any]] = [
            {
                "message": message,
                "@timestamp": received or datetime.now(UTC),
                "@version": "1",
                "event": {"original": message},
                "host": {"name": host},
                "log": {"file": {"path": path}},
            }
            for message in messages
        ]
        self._apply(self.sections["filter"], events)
        [output] = list(plugins(self.sections["output"], "elasticsearch"))
        for event in events:
            metadata = event.setdefault("@metadata", {})
            metadata["_index"] = self.sprintf(output.options["index"], event)
            if "document_id" in output.options:
                metadata["_id"] = self.sprintf(output.options["document_id"], event)
        return events

    @staticmethod
    def sprintf(template: str, event: dict[str, Any]) -> str:
        """Logstash's ``%{[field]}`` and ``%{+yyyy.MM.dd}`` (of @timestamp, in UTC) references.

        A reference to a field the event lacks stays as written, as in Logstash.
        """
        day = event["@timestamp"].astimezone(UTC).strftime("%Y.%m.%d")
        text = template.replace("%{+yyyy.MM.dd}", day)

        def field(match: re.Match[str]) -> str:
            value = _get(event, match.group(1))
            return match.group(0) if value is None else str(value)

        return re.sub(r"%\{(\[[^}]+\])\}", field, text)

    def _apply(self, items: list[Plugin | Conditional], events: list[dict[str, Any]]) -> None:
        for item in items:
            if isinstance(item, Conditional):
                for index, (_, body) in enumerate(item.branches):
                    taken = [e for e in events if self._branch(item, e) == index]
                    if taken:
                        self._apply(body, taken)
                continue
            handler = getattr(self, f"_{item.name}", None)
            if handler is None:
                raise NotImplementedError(f"filter the interpreter does not know: {item.name}")
            handler(item, events)

    @staticmethod
    def _branch(conditional: Conditional, event: dict[str, Any]) -> int | None:
        for index, (condition, _) in enumerate(conditional.branches):
            if condition is None or _holds(condition, event):
                return index
        return None

    def _grok(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        known = {"id", "match", "pattern_definitions", "tag_on_failure"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        [(source, pattern)] = plugin.options["match"].items()
        oracle = engines()
        grok = oracle.grok(pattern, plugin.options.get("pattern_definitions", {}))
        for event, captures in zip(
            events, oracle.match(grok, [str(_get(event, source)) for event in events]), strict=True
        ):
            if captures is None:
                _tag(event, plugin.options.get("tag_on_failure", ["_grokparsefailure"]))
                continue
            for name, text in captures.items():
                field_name, _, conversion = name.partition(":")
                _set(event, field_name, _convert(text, conversion))

    def _date(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        known = {"id", "match", "timezone", "target", "tag_on_failure", "remove_field"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        source, *formats = plugin.options["match"]
        oracle = engines()
        # No locale option: Logstash uses the JVM's default (see engines.Engines).
        date = oracle.date(formats, substitute(plugin.options.get("timezone", "UTC"), self.environ))
        texts = [_get(event, source) for event in events]
        for event, text, parsed in zip(events, texts, oracle.parse(date, [str(t) for t in texts]), strict=True):
            if text is None or isinstance(parsed, str):
                _tag(event, plugin.options.get("tag_on_failure", ["_dateparsefailure"]))
                continue
            _set(event, plugin.options.get("target", "@timestamp"), _EPOCH + timedelta(milliseconds=parsed))
            for reference in plugin.options.get("remove_field", []):
                _remove(event, reference)

    def _fingerprint(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        known = {"id", "source", "target", "method"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        assert plugin.options["method"] == "SHA256"
        for event in events:
            value = str(_get(event, plugin.options["source"]))
            _set(event, plugin.options["target"], hashlib.sha256(value.encode()).hexdigest())

    def _mutate(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        for option, value in plugin.options.items():
            for event in events:
                if option == "add_field":
                    for reference, text in value.items():
                        _set(event, reference, self.sprintf(text, event))
                elif option == "remove_field":
                    for reference in value:
                        _remove(event, reference)
                else:
                    raise NotImplementedError(f"mutate option the interpreter does not know: {option}")


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _convert(text: str, conversion: str) -> Any:
    """Logstash grok's ``:int``/``:float`` conversions: Ruby's ``to_i`` and ``to_f`` (a 64-bit double)."""
    if conversion == "float":
        return float(text)  # the pattern admits only forms Ruby's to_f and Python's float read alike
    if conversion == "int":
        return int(text)
    assert not conversion, f"grok conversion the interpreter does not know: {conversion}"
    return text


def document(event: dict[str, Any]) -> dict[str, Any]:
    """What the Elasticsearch output sends: the event without ``@metadata``, timestamp as ISO 8601."""
    body = {k: v for k, v in event.items() if k != "@metadata"}
    body["@timestamp"] = event["@timestamp"].astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return body
