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
from pipeline.lines.fields import shown_text

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


def discover(names: list[str], environ: Mapping[str, str] | None = None) -> tuple[list[Source], list[tuple[str, str]]]:
    """The sources to read, and (name, message) for each name that gives nothing to read.

    No names: ``TASK_TIME_LOG`` and its rotated names, or every log in it if it is a folder,
    whatever stdin is (under cron stdin is an empty pipe, over ssh an open socket); ``-``
    is stdin. A file named twice, directly or through a folder, is read once (same device
    and inode). Messages show names escaped (``shown_text``).
    """
    if not names:
        path = settings.TASK_LOG.text(environ)
        if os.path.isdir(path):
            return _unique(*_folder(path, " (set TASK_TIME_LOG or name files)"))
        folder, base = os.path.split(path)
        try:
            found = logs_in(folder or ".", base)
        except FileNotFoundError:
            found = []
        except OSError as exc:
            problem = (
                f"cannot read {shown_text(folder or '.')}: {exc.strerror or exc} (set TASK_TIME_LOG or name files)"
            )
            return [], [(path, problem)]
        if not found:
            return [], [(path, f"no task-time log at {shown_text(path)} (set TASK_TIME_LOG or name files)")]
        return _unique([Source(name) for name in found], [])
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    for name in names:
        if name == STDIN:
            sources.append(Source(STDIN))
        elif os.path.isdir(name):
            in_folder, folder_problems = _folder(name)
            sources.extend(in_folder)
            problems.extend(folder_problems)
        else:
            sources.append(Source(name))  # opening it tells whether it can be read
    return _unique(sources, problems)


def _folder(folder: str, hint: str = "") -> tuple[list[Source], list[tuple[str, str]]]:
    """The logs in a folder, or why there are none."""
    try:
        found = logs_in(folder)
    except OSError as exc:
        return [], [(folder, f"cannot read {shown_text(folder)}: {exc.strerror or exc}{hint}")]
    if not found:
        return [], [(folder, f"no task-time logs in {shown_text(folder)}{hint}")]
    return [Source(path) for path in found], []


def _unique(sources: list[Source], problems: list[tuple[str, str]]) -> tuple[list[Source], list[tuple[str, str]]]:
    """``sources`` without a second reading of any file (or of stdin), in first-named order."""
    seen: set[object] = set()
    kept = []
    for source in sources:
        key: object
        if source.name == STDIN:
            key = STDIN
        else:
            try:
                status = os.stat(source.name)
                key = (status.st_dev, status.st_ino)
            except (OSError, ValueError):  # unreadable: opening it says why, once per real path
                key = os.path.realpath(source.name)
        if key not in seen:
            seen.add(key)
            kept.append(source)
    return kept, problems


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
            raise SourceError(f"cannot read {shown_text(self.source.name)}: {exc.strerror or exc}") from None
        with stream:
            yield from self._lines(stream)

    def _lines(self, stream: BinaryIO) -> Iterator[bytes]:
        try:
            head = stream.peek(2)[:2] if hasattr(stream, "peek") else b""
        except OSError as exc:
            raise SourceError(f"cannot read {shown_text(self.source.name)}: {exc.strerror or exc}") from None
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
            raise SourceError(f"cannot read {shown_text(self.source.name)}: {exc.strerror or exc}") from None
        if self.damage is not None:
            self.cut_line = rest
        elif rest:
            yield rest + b"\n"

    def _gunzip(self, stream: BinaryIO) -> Iterator[bytes]:
        """Decompressed blocks of every gzip member; ``damage`` set if the data ends early or is corrupt.

        Corrupt data is reported at the compressed offset where the decompressor stopped:
        the bytes it consumed, from the start of the file, before it raised.
        """
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        read = 0
        member_open = False  # a member has started and not ended
        for data in iter(lambda: stream.read(CHUNK), b""):
            read += len(data)
            while data:
                member_open = True
                before = inflater.copy()  # to find, after an error, how far it got
                try:
                    block = inflater.decompress(data, 4 * CHUNK)
                except zlib.error as exc:
                    offset = read - len(data) + _good_prefix(before, data)
                    self.damage = f"compressed data is corrupt after {offset} bytes ({exc})"
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


def _good_prefix(inflater: zlib._Decompress, data: bytes) -> int:
    """How many bytes of ``data`` ``inflater`` takes before it raises (a copy is tried, by bisection).

    A prefix that raises makes every longer one raise: the decompressor reads in order.
    """
    low, high = 0, len(data)  # data[:low] is taken; data[:high] raises
    while high - low > 1:
        middle = (low + high) // 2
        trial = inflater.copy()
        try:
            rest = data[:middle]
            while rest:  # output is dropped, in bounded pieces
                trial.decompress(rest, 4 * CHUNK)
                rest = trial.unconsumed_tail
                if trial.eof:
                    break
        except zlib.error:
            high = middle
        else:
            low = middle
    return low
