"""What both line formats share: ``Field`` and how a name is written as one token and read back."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

EMPTY = "-"


@dataclass(frozen=True)
class Field:
    """One ``Label: value`` field of a line.

    ``name`` is the field's name everywhere after the line: the grok capture, the
    Elasticsearch document field, the log record attribute and the report's key.
    ``kind`` says how its value is written; each line module lists the kinds it uses.
    """

    label: str
    name: str
    kind: str


def _percent(char: str) -> str:
    return "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "surrogatepass"))


def encode_name(value: str | None) -> str:
    """Write a task, queue, job or worker name as one whitespace-free token.

    Whitespace, control and other non-printable characters and ``%`` itself are
    percent-encoded (UTF-8), so no name can split the line or forge a field, and the
    original is recoverable. An empty or missing name is written as ``-``; a name that
    is literally ``-`` is written as ``%2D``. A lone surrogate is encoded as UTF-8 would
    if it allowed them (``surrogatepass``): a byte that was not UTF-8, read from Redis and
    decoded with ``surrogateescape`` (0xFF as U+DCFF), is written ``%ED%B3%BF`` and read
    back as U+DCFF, which names the byte.
    """
    if not value:
        return EMPTY
    if value.isprintable() and " " not in value and "%" not in value and value != EMPTY:
        return value
    if value == EMPTY:
        return "%2D"
    return "".join(char if char.isprintable() and char not in " %" else _percent(char) for char in value)


def decode_name(raw: bytes | str) -> str:
    """Undo ``encode_name``: the name as the application gave it (``""`` for ``-``).

    Exact for every name ``encode_name`` writes. Bytes that are not UTF-8 become U+FFFD, as
    Logstash's UTF-8 codec reads them.
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw == EMPTY.encode():
        return ""
    data = unquote_to_bytes(raw) if b"%" in raw else raw
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


def shown_name(name: str) -> str:
    """A decoded name (or any text from data) for a terminal: control and other invisible
    characters escaped as Python writes them (``\\n``, ``\\x1b``, ``\\udcff``), so a name cannot
    forge a line or move the cursor, and rows stay rows. ``(empty)`` for an empty name."""
    if name == "":
        return "(empty)"
    if name.isprintable():
        return name
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in name)
