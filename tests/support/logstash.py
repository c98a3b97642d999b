"""Run the filter and output stages of ``logstash/pipeline/task-time.conf``.

Logstash cannot run on these machines, so the tests read the pipeline config itself: a
parser for Logstash's config language, and an interpreter for exactly the plugins and
conditions the pipeline uses. Grok and date run on Logstash's own engines (Joni and
Joda-Time, through ``harness.engines``); Python keeps only the plain field
operations (conditionals, mutate, fingerprint, the output's index and id). A plugin,
option or condition it does not know fails loudly: a change to the config cannot slip past
the tests unexamined.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness.engines import engines
from tests.support.logstash_config import CONFIG, Conditional, Plugin, load, parse, plugins

__all__ = ["CONFIG", "Conditional", "Pipeline", "Plugin", "document", "load", "parse", "plugins", "substitute"]


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


_CONDITION_TOKEN = re.compile(r'\s*("[^"]*"|\[\w+\]|-?[0-9]+(?:\.[0-9]+)?|<=|>=|<|>|\(|\)|[a-z]+)')
_COMPARISONS = {
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


class ConditionError(Exception):
    """What Logstash's EventCondition throws (UnexpectedTypeException): comparing a missing or non-numeric field."""


def _condition_tokens(condition: str) -> list[str]:
    tokens, position = [], 0
    while position < len(condition):
        match = _CONDITION_TOKEN.match(condition, position)
        if not match:
            raise NotImplementedError(f"condition the interpreter does not know: {condition}")
        tokens.append(match.group(1))
        position = match.end()
    return tokens


def _holds(condition: str, event: dict[str, Any]) -> bool:
    """Logstash's conditions, as far as the configs use them.

    ``"tag" in [field]`` and ``"tag" not in [field]``; ``[field]`` alone (truthy: present, and
    not empty or ``false``); ``[field] < number`` and ``>``, ``<=``, ``>=``, which, like
    Logstash's ``compareFieldToConstant``, fail on a missing or non-numeric field instead of
    being false; parentheses; ``and`` and ``or``, both short-circuit as Logstash's compiled
    conditions are. ``and`` and ``or`` mixed without parentheses are refused: the precedence
    is not modelled. Anything else fails loudly.
    """
    tokens = _condition_tokens(condition)
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise NotImplementedError(f"condition the interpreter does not know: {condition}")
        position += 1
        return tokens[position - 1]

    def field(token: str) -> str:
        if not re.fullmatch(r"\[\w+\]", token):
            raise NotImplementedError(f"condition the interpreter does not know: {condition}")
        return token[1:-1]

    def expression() -> bool:
        token = take()
        if token == "(":
            value = disjunction()
            if take() != ")":
                raise NotImplementedError(f"condition the interpreter does not know: {condition}")
            return value
        if token.startswith('"'):
            negate = peek() == "not"
            if negate:
                take()
            if take() != "in":
                raise NotImplementedError(f"condition the interpreter does not know: {condition}")
            present = token[1:-1] in (event.get(field(take())) or [])
            return not present if negate else present
        name = field(token)
        value = event.get(name)
        if peek() in _COMPARISONS:
            operator = take()
            number = take()
            if not re.fullmatch(r"-?[0-9]+(?:\.[0-9]+)?", number):
                raise NotImplementedError(f"condition the interpreter does not know: {condition}")
            constant = float(number) if "." in number else int(number)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConditionError(f"[{name}] is {value!r}, not a number, in: {condition}")
            return bool(_COMPARISONS[operator](value, constant))
        if isinstance(value, list | dict):
            raise NotImplementedError(f"truthiness of a list or map field: {condition}")
        return value is not None and str(value) not in ("", "false")

    def disjunction() -> bool:
        value = expression()
        operator = None
        while peek() in ("and", "or"):
            if operator is not None and peek() != operator:
                raise NotImplementedError(f"and/or mixed without parentheses: {condition}")
            operator = take()
            if (not value) if operator == "and" else value:
                skip()  # decided: the right side is not evaluated, as in Logstash
            else:
                value = expression()
        return value

    def skip() -> None:
        """Step over one expression without evaluating it (short-circuit)."""
        nonlocal position
        depth = 0
        while True:
            token = take()
            if token == "(":
                depth += 1
            elif token == ")":
                depth -= 1
            if depth == 0 and (peek() in (None, "and", "or", ")")):
                return

    value = disjunction()
    if position != len(tokens):
        raise NotImplementedError(f"condition the interpreter does not know: {condition}")
    return value


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
            if text is None:  # no source field: Logstash's date filter leaves the event alone
                continue
            if isinstance(parsed, str):
                _tag(event, plugin.options.get("tag_on_failure", ["_dateparsefailure"]))
                continue
            _set(event, plugin.options.get("target", "@timestamp"), _EPOCH + timedelta(milliseconds=parsed))
            for reference in plugin.options.get("remove_field", []):
                _remove(event, reference)

    def _fingerprint(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        known = {"id", "source", "target", "method"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        # Without a key the plugin writes the plain digest as lowercase hex.
        digest = _DIGESTS[plugin.options["method"]]
        for event in events:
            value = str(_get(event, plugin.options["source"]))
            _set(event, plugin.options["target"], digest(value.encode()).hexdigest())

    def _mutate(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        for option, value in plugin.options.items():
            for event in events:
                if option == "id":
                    continue
                if option == "add_field":
                    for reference, text in value.items():
                        _set(event, reference, self.sprintf(text, event))
                elif option == "remove_field":
                    for reference in value:
                        _remove(event, reference)
                elif option == "add_tag":  # a common option: applied, like add_field, when the filter ran
                    _tag(event, [self.sprintf(tag, event) for tag in value])
                else:
                    raise NotImplementedError(f"mutate option the interpreter does not know: {option}")

    def _truncate(self, plugin: Plugin, events: list[dict[str, Any]]) -> None:
        # logstash-filter-truncate: cut each string to length_bytes UTF-8 bytes, backing up
        # to the last whole character; add_tag only when some field was cut.
        known = {"id", "fields", "length_bytes", "add_tag"}
        assert set(plugin.options) <= known, set(plugin.options) - known
        limit = plugin.options["length_bytes"]
        for event in events:
            cut = False
            for reference in plugin.options["fields"]:
                value = _get(event, reference)
                if isinstance(value, str) and len(value.encode()) > limit:
                    _set(event, reference, _cut_utf8(value, limit))
                    cut = True
            if cut:
                _tag(event, plugin.options.get("add_tag", []))


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGESTS = {"MD5": hashlib.md5, "SHA256": hashlib.sha256}


def _convert(text: str, conversion: str) -> Any:
    """Logstash grok's ``:int``/``:float`` conversions: Ruby's ``to_i`` and ``to_f`` (a 64-bit double)."""
    if conversion == "float":
        return float(text)  # the pattern admits only forms Ruby's to_f and Python's float read alike
    if conversion == "int":
        return int(text)
    assert not conversion, f"grok conversion the interpreter does not know: {conversion}"
    return text


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
