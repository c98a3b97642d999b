"""Where the report's lines come from: files, rotated and compressed ones, folders, stdin.

Compressed input is recognised by its gzip magic bytes, not its name, and decompressed
here with ``zlib`` so that a truncated or damaged file still gives every line before the
damage.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from pipeline import settings

CHUNK = 1 << 20
_GZIP_MAGIC = b"\x1f\x8b"
# A task-time log in a folder: Logstash's *.log and *.log.N, logrotate's dated names, and
# their compressed forms.
_LOG_NAME = re.compile(r"^(?P<base>.+\.log)(?:(?P<sep>[.-])(?P<number>[0-9]+))?(?P<gz>\.gz)?$")
STDIN = "-"


@dataclass(frozen=True)
class Source:
    """One input: a file path, or ``-`` for stdin."""

    name: str


class SourceError(Exception):
    """A source that cannot be read at all."""


def _age_order(name: str) -> tuple[str, int, int]:
    """Oldest first: ``x.log.3``, ``x.log.2``, ``x.log.1``, then dated ones, then ``x.log``."""
    match = _LOG_NAME.match(name)
    if match is None or match["number"] is None:
        return (match["base"] if match else name, 2, 0)
    number = int(match["number"])
    return (match["base"], 0, -number) if match["sep"] == "." else (match["base"], 1, number)


def logs_in(folder: str, base: str | None = None) -> list[str]:
    """The task-time logs in ``folder`` (only ``base`` and its rotated names, if given), oldest first."""
    names = []
    for entry in os.scandir(folder):
        match = _LOG_NAME.match(entry.name)
        if base is not None and (match is None or match["base"] != base):
            if entry.name not in (base, f"{base}.gz"):
                continue
        elif base is None and match is None:
            continue
        if entry.is_file():
            names.append(entry.name)
    return [os.path.join(folder, name) for name in sorted(names, key=_age_order)]


def discover(
    names: list[str], stdin_has_data: bool, environ: Mapping[str, str] | None = None
) -> tuple[list[Source], list[tuple[str, str]]]:
    """The sources to read, and (name, message) for each name that gives nothing to read.

    No names: stdin if it is a pipe or a file, else ``TASK_TIME_LOG`` and its rotated names.
    """
    if not names:
        if stdin_has_data:
            return [Source(STDIN)], []
        path = settings.TASK_LOG.text(environ)
        folder, base = os.path.split(path)
        try:
            found = logs_in(folder or ".", base)
        except FileNotFoundError:
            found = []
        except OSError as exc:
            return [], [(path, f"cannot read {folder or '.'}: {exc.strerror or exc} (set TASK_TIME_LOG or name files)")]
        if not found:
            return [], [(path, f"no task-time log at {path} (set TASK_TIME_LOG or name files)")]
        return [Source(name) for name in found], []
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    for name in names:
        if name == STDIN:
            sources.append(Source(STDIN))
        elif os.path.isdir(name):
            try:
                found = logs_in(name)
            except OSError as exc:
                problems.append((name, f"cannot read {name}: {exc.strerror or exc}"))
                continue
            if not found:
                problems.append((name, f"no task-time logs in {name}"))
            sources.extend(Source(path) for path in found)
        else:
            sources.append(Source(name))  # opening it tells whether it can be read
    return sources, problems


class Reading:
    """The whole-line chunks of one source; afterwards, ``damage`` says whether compressed data ended early.

    Every chunk ends with ``\\n``; a last line without one gets one. When compressed data is
    truncated or corrupt, the line it cuts is not in the chunks but in ``cut_line``.
    """

    def __init__(self, source: Source, stdin: BinaryIO) -> None:
        self.source = source
        self.stdin = stdin
        self.damage: str | None = None
        self.cut_line = b""

    def __iter__(self) -> Iterator[bytes]:
        if self.source.name == STDIN:
            yield from self._lines(self.stdin)
            return
        try:
            stream = open(self.source.name, "rb")  # noqa: SIM115 - closed below, after the generator ends
        except OSError as exc:
            raise SourceError(f"cannot read {self.source.name}: {exc.strerror or exc}") from None
        with stream:
            yield from self._lines(stream)

    def _lines(self, stream: BinaryIO) -> Iterator[bytes]:
        try:
            head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        except OSError as exc:
            raise SourceError(f"cannot read {self.source.name}: {exc.strerror or exc}") from None
        blocks = self._gunzip(stream) if head == _GZIP_MAGIC else iter(lambda: stream.read(CHUNK), b"")
        rest = b""
        try:
            for block in blocks:
                data = rest + block if rest else block
                cut = data.rfind(b"\n") + 1
                rest = data[cut:]
                if cut:
                    yield data[:cut]
        except OSError as exc:
            raise SourceError(f"cannot read {self.source.name}: {exc.strerror or exc}") from None
        if self.damage is not None:
            self.cut_line = rest
        elif rest:
            yield rest + b"\n"

    def _gunzip(self, stream: BinaryIO) -> Iterator[bytes]:
        """Decompressed blocks of every gzip member; ``damage`` set if the data ends early or is corrupt."""
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        read = 0
        member_open = False  # a member has started and not ended
        for data in iter(lambda: stream.read(CHUNK), b""):
            read += len(data)
            while data:
                member_open = True
                try:
                    block = inflater.decompress(data, 4 * CHUNK)
                except zlib.error as exc:
                    self.damage = f"compressed data is corrupt after {read} bytes ({exc})"
                    return
                if block:
                    yield block
                if inflater.eof:  # the end of one member; another may follow (concatenated gzip)
                    data, member_open = inflater.unused_data, False
                    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
                else:
                    data = inflater.unconsumed_tail
        if member_open:
            self.damage = "compressed data ends early (truncated)"
