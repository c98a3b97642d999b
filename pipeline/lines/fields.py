"""What both line formats share: ``Field`` and how a name is written as one token and read back."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

EMPTY = "-"

# The largest decimal a line may hold (Task-time, Wait-time, a queue's Latency…), either
# way: 10**15 seconds (31.7 million years). Elasticsearch's ``double`` holds any finite
# value, but the figures made of the values must stay finite too: with every value at most
# 1e15, a sum of up to 1e293 of them cannot overflow, nor can a mean, a percentile's
# interpolation or Kibana's sums.
# Any value beyond, infinity included (``1e999`` reads as infinity), makes the line
# unparsed, in the report and in Logstash (the range checks of task-time.conf and
# queue-monitor.conf) alike.
SECONDS_LIMIT = 1e15


def seconds_in_range(value: float) -> bool:
    """Whether seconds read from a line are within ``SECONDS_LIMIT`` (NaN is not)."""
    return -SECONDS_LIMIT <= value <= SECONDS_LIMIT


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


def shown_text(text: str) -> str:
    """Text from data (a line, a file name, a reason) for a terminal: control and other
    invisible characters (escape sequences too) and lone surrogates (undecodable bytes) are
    written as Python writes them (``\\n``, ``\\x1b``, ``\\udcff``), so data cannot forge a line
    or move the cursor, and rows stay rows."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


def shown_name(name: str) -> str:
    """A decoded name for a terminal, escaped as ``shown_text`` escapes text; ``(empty)`` for an empty name."""
    return "(empty)" if name == "" else shown_text(name)
