"""Where task-time lines go: the ``pipeline.task_time`` logger and its file handler.

An application that configures handlers on that logger before the first job keeps them;
otherwise the first line installs ``TaskLogHandler`` on the file named by ``TASK_TIME_LOG``.
Lines never propagate to the root logger from the default setup, so they do not also end
up in the worker's console output.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from .line import OPTIONAL_FIELDS, REQUIRED_FIELDS, Execution, LineClock, format_fields, format_line, timezone_from_env

LOGGER_NAME = "pipeline.task_time"
PATH_ENV = "TASK_TIME_LOG"
# The path the compose stack mounts its shared log volume at (worker writes, Logstash reads).
DEFAULT_PATH = "/var/log/rq-task-time/task-time.log"


class TaskLogError(Exception):
    """The task-time log cannot be opened or written."""


def log_path_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The log file path: ``TASK_TIME_LOG`` or the compose volume's default."""
    return (environ if environ is not None else os.environ).get(PATH_ENV, "").strip() or DEFAULT_PATH


class TaskLineFormatter(logging.Formatter):
    """Renders a record as ``Time: <asctime> <message>``, the time in a fixed zone (UTC by default)."""

    def __init__(self, tz: Any = None) -> None:
        super().__init__()
        self.clock = LineClock(tz) if tz is not None else LineClock()

    def line(self, timestamp: float, message: str) -> str:
        """The line for ``message`` logged at ``timestamp`` (epoch seconds)."""
        return format_line(timestamp, message, self.clock)

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if "\n" in message or "\r" in message:
            # Only foreign records can carry these; task lines encode names already.
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        return self.line(record.created, message)


class TaskLogHandler(logging.Handler):
    """Appends every record to a file with one unbuffered ``write``.

    The file is opened with ``O_APPEND``, so the worker and all its work horses can share
    it and a line is on disk (in the page cache) the moment it is logged: a SIGKILL right
    after loses nothing. Before each write the path is checked with ``stat``; when the
    file was moved or deleted (log rotation) it is reopened.

    A write cut short (disk full, file size limit) leaves a fragment without a newline,
    perhaps written by another process (a work horse writes one line and exits). So when
    the file's size is not where this handler's last whole line left it (another process
    wrote, or a write failed), its last byte is read first, and a line that would be
    appended to a fragment starts with a newline: the fragment stays a line of its own and
    no good line is glued to it. A handler writing alone pays no extra system call.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        level: int = logging.NOTSET,
        describe: str = "task-time log",
        variable: str = PATH_ENV,
        reporter: str = LOGGER_NAME,
    ) -> None:
        """``describe``, ``variable`` and ``reporter`` name the log, the setting that moves it and
        who reports a problem with it, in the one-line messages."""
        super().__init__(level)
        self.path = os.fspath(path)
        self.describe, self.variable, self.reporter = describe, variable, reporter
        self._fd = -1
        self._identity: tuple[int, int] | None = None
        self._readable = False
        self._size = 0  # the file's size at the last check, to find its last byte
        self._end = -1  # where this handler's last whole line ended; -1: unknown
        self._cut_short = False  # this process left a fragment (used when the file is not readable)
        self._reported: set[str] = set()

    def open(self) -> None:
        """Open (or reopen) the file, creating it and its folder if needed; raise ``TaskLogError``."""
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
            raise TaskLogError(
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
        with self.lock:  # type: ignore[union-attr]
            try:
                self._current_fd()
            except (OSError, TaskLogError) as exc:
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

    def emit(self, record: logging.LogRecord) -> None:
        self.write_line(self.format(record))

    def write_line(self, text: str) -> None:
        """Append ``text`` and a newline in one ``write``; report (never raise) a failure."""
        data = (text + "\n").encode("utf-8", "backslashreplace")
        with self.lock:  # type: ignore[union-attr]
            try:
                fd = self._current_fd()
                if self._size != self._end and self._after_fragment(fd):
                    data = b"\n" + data
                written = os.write(fd, data)
                if written == len(data):
                    self._cut_short = False
                    # Right unless another process appended meanwhile, which only costs a check.
                    self._end = self._size + written
                    return
                # Cut short: the rest only fits if space came back meanwhile.
                self._cut_short, self._end = True, -1
                data = data[written:]
                while data:
                    data = data[os.write(fd, data) :]
                self._cut_short = False
            except (OSError, TaskLogError) as exc:
                self._report(exc)

    def _after_fragment(self, fd: int) -> bool:
        """Whether the file ends in the middle of a line (a write was cut short)."""
        if not self._readable:
            return self._cut_short
        if self._size == 0:
            return False
        try:
            return os.pread(fd, 1, self._size - 1) not in (b"\n", b"")
        except OSError:
            return self._cut_short

    def _report(self, exc: Exception) -> None:
        # One line on stderr per distinct problem: the task itself must not fail because
        # its timing could not be written, and a traceback per job would drown the worker log.
        message = str(exc) if isinstance(exc, TaskLogError) else f"cannot write to {self.path}: {exc}"
        if message not in self._reported:
            self._reported.add(message)
            sys.stderr.write(f"{self.reporter}: {message}\n")

    def close(self) -> None:
        self.acquire()
        try:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        finally:
            self.release()
        super().close()


_default_handler: TaskLogHandler | None = None


def get_task_logger() -> logging.Logger:
    """The logger task lines go to, given the default file handler if it has no handler yet."""
    global _default_handler
    logger = logging.getLogger(LOGGER_NAME)
    if not logger.handlers:
        handler = TaskLogHandler(log_path_from_env())
        handler.setFormatter(TaskLineFormatter(timezone_from_env()))
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        _default_handler = handler
    return logger


def open_task_log() -> logging.Logger:
    """Set up the task logger now and open its files, raising ``TaskLogError`` if one cannot be."""
    logger = get_task_logger()
    for handler in logger.handlers:
        if isinstance(handler, TaskLogHandler):
            handler.open()
    return logger


_logger: logging.Logger | None = None
_setup_error: str | None = None


def _direct_handler(logger: logging.Logger) -> TaskLogHandler | None:
    """The default handler when it is still the logger's only destination, untouched."""
    handler = _default_handler
    handlers = logger.handlers
    if (
        handler is not None
        and len(handlers) == 1
        and handlers[0] is handler
        and not logger.filters
        and not handler.filters
        and handler.level <= logging.INFO
        and isinstance(handler.formatter, TaskLineFormatter)
    ):
        return handler
    return None


# Record attributes handed to application handlers: one per field after Time.
_RECORD_FIELDS = tuple(field.name for field in (*REQUIRED_FIELDS[1:], *OPTIONAL_FIELDS))


def write_task_line(execution: Execution) -> None:
    """Log the line for one execution.

    Records handed to application handlers carry the execution as ``record.execution``
    and each field as an attribute of its own (``record.task_name``, ``record.task_time``,
    …), for formatters of their own.
    """
    global _logger, _setup_error
    logger = _logger
    if logger is None:
        if _setup_error is not None:
            return
        try:
            logger = _logger = get_task_logger()
        except ValueError as exc:  # a bad TASK_TIME_TZ: say so once, never fail the task
            _setup_error = str(exc)
            sys.stderr.write(f"{LOGGER_NAME}: {exc}; no task-time lines are written\n")
            return
    if not logger.isEnabledFor(logging.INFO):
        return
    fields = format_fields(execution)
    handler = _direct_handler(logger)
    if handler is not None:
        # The same line the record path below gives, without building a LogRecord:
        # this runs once per job, and logging's machinery costs more than the write.
        handler.write_line(handler.formatter.line(time.time(), fields))  # type: ignore[union-attr]
        return
    extra: dict[str, Any] = {name: getattr(execution, name) for name in _RECORD_FIELDS}
    extra["execution"] = execution
    logger.handle(logger.makeRecord(LOGGER_NAME, logging.INFO, __file__, 0, fields, None, None, extra=extra))
