"""A crash-safe line appender: one unbuffered ``write`` per batch of whole lines.

The file is opened with ``O_APPEND``, so several processes (a worker and its work horses)
can share it, and a line is on disk (in the page cache) the moment it is written: a
SIGKILL right after loses nothing. Before each write the path is checked with ``stat``;
when the file was moved or deleted (log rotation) it is reopened.

A write cut short (disk full, file size limit) leaves a fragment without a newline,
perhaps written by another process (a work horse writes one line and exits). So when the
file's size is not where this appender's last write left it (another process wrote, or a
write failed), its last byte is read first, and lines that would be appended to a fragment
start with a newline: the fragment stays a line of its own and no good line is glued to
it. A last byte that is not a newline is looked at again for a moment (``settings.
APPEND_SETTLE_SECONDS``) unless this process cut it short: another process's line still
being copied in looks like a fragment until its write ends. An appender writing alone pays
no extra system call.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager

from .settings import APPEND_SETTLE_SECONDS as _SETTLE_SECONDS


@contextmanager
def signals_held(held: Collection[signal.Signals]) -> Iterator[None]:
    """The ``held`` signals wait (the kernel keeps them pending) until the block is over; then their handlers run.

    Around a write: a handler that ends the process or raises cannot cut a line short.
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


class AppendError(Exception):
    """The file cannot be opened or written."""


class Appender:
    """Appends whole lines to ``path``; every problem is reported once on stderr, never raised by ``write_lines``.

    ``describe`` (what the file is), ``variable`` (the setting that moves it) and
    ``reporter`` (who speaks) make the one-line messages.
    """

    def __init__(self, path: str | os.PathLike[str], describe: str, variable: str, reporter: str) -> None:
        self.path = os.fspath(path)
        self.describe, self.variable, self.reporter = describe, variable, reporter
        self.lock = threading.RLock()
        self._fd = -1
        self._identity: tuple[int, int] | None = None
        self._readable = False
        self._size = 0  # the file's size at the last check, to find its last byte
        self._end = -1  # where this appender's last whole write ended; -1: unknown
        self._cut_short = False  # this process left a fragment (used when the file is not readable)
        self._reported: set[str] = set()

    def open(self) -> None:
        """Open (or reopen) the file, creating it and its folder if needed; raise ``AppendError``."""
        try:
            folder = os.path.dirname(self.path)
            if folder:
                os.makedirs(folder, exist_ok=True)
            flags = os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
            try:
                # Readable too, to look at the last byte after a write was cut short.
                fd = os.open(self.path, os.O_RDWR | flags, 0o644)
                readable = True
            except PermissionError:
                fd = os.open(self.path, os.O_WRONLY | flags, 0o644)
                readable = False
        except OSError as exc:
            raise AppendError(
                f"cannot open the {self.describe} {self.path}: {exc.strerror or exc} "
                f"(set {self.variable} to a writable file)"
            ) from None
        stat = os.fstat(fd)
        old, self._fd, self._identity = self._fd, fd, (stat.st_dev, stat.st_ino)
        self._readable = readable
        self._size = stat.st_size
        self._end = -1
        if old >= 0:
            os.close(old)

    def reopen_if_moved(self) -> None:
        """Reopen the file now if it was moved or deleted (a worker calls this before forking)."""
        with self.lock:
            try:
                self._current_fd()
            except (OSError, AppendError) as exc:
                self._report(exc)

    def _current_fd(self) -> int:
        if self._fd >= 0:
            try:
                stat = os.stat(self.path)
                if (stat.st_dev, stat.st_ino) == self._identity:
                    self._size = stat.st_size
                    return self._fd
            except FileNotFoundError:
                pass
        self.open()
        return self._fd

    def write_line(self, text: str) -> bool:
        """Append ``text`` and a newline in one ``write``; see ``write_lines``."""
        return self._write((text + "\n").encode("utf-8", "backslashreplace"))

    def write_lines(self, texts: Sequence[str]) -> bool:
        """Append every text, each with a newline, in one ``write``: all of them or, cut short, a prefix.

        Returns whether everything was written; a failure is reported on stderr, once per
        distinct problem, never raised.
        """
        return self._write("".join(text + "\n" for text in texts).encode("utf-8", "backslashreplace"))

    def _write(self, data: bytes) -> bool:
        with self.lock:
            try:
                fd = self._current_fd()
                if self._size != self._end and self._after_fragment(fd):
                    data = b"\n" + data
                written = os.write(fd, data)
                if written == len(data):
                    self._cut_short = False
                    # Right unless another process appended meanwhile, which only costs a check.
                    self._end = self._size + written
                    return True
                # Cut short: the rest only fits if space came back meanwhile.
                self._cut_short, self._end = True, -1
                data = data[written:]
                while data:
                    data = data[os.write(fd, data) :]
                self._cut_short = False
                return True
            except (OSError, AppendError) as exc:
                self._report(exc)
                return False

    def _after_fragment(self, fd: int) -> bool:
        """Whether the file ends in the middle of a line (a write was cut short)."""
        if not self._readable:
            return self._cut_short
        if self._size == 0:
            return False
        try:
            if os.pread(fd, 1, self._size - 1) in (b"\n", b""):
                return False
            if self._cut_short:  # this process left it
                return True
            # Another process may be in the middle of its own write: the kernel grows the
            # size page by page, and stat and pread do not wait for the writer. Such a line
            # ends a moment later; a fragment stays (and costs this wait once, as the next
            # line ends it). Look again while the end keeps moving or for a short while.
            deadline = time.monotonic() + _SETTLE_SECONDS
            while time.monotonic() < deadline:
                os.sched_yield()
                size = os.fstat(fd).st_size
                if size == self._size:
                    continue
                self._size = size
                if os.pread(fd, 1, size - 1) in (b"\n", b""):
                    return False
            return True
        except OSError:
            return self._cut_short

    def _report(self, exc: Exception) -> None:
        # One line on stderr per distinct problem: what writes the lines must go on, and a
        # traceback per line would drown its output.
        message = str(exc) if isinstance(exc, AppendError) else f"cannot write to {self.path}: {exc}"
        if message not in self._reported:
            self._reported.add(message)
            sys.stderr.write(f"{self.reporter}: {message}\n")

    def close(self) -> None:
        with self.lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
