"""A parser for Logstash's config language: the pipeline config's sections, plugins and conditionals."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CONFIG = Path(__file__).resolve().parents[2] / "logstash" / "pipeline" / "task-time.conf"


_TOKEN = re.compile(
    r"""
    (?P<space>\s+|\#[^\n]*)
  | (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<arrow>=>)
  | (?P<op>==|!=|=~|!~|<=|>=|<|>)
  | (?P<punct>[{}\[\],()])
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
