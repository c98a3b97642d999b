"""Where task-time lines go: the ``pipeline.task_time`` logger and its file handler.

An application that configures handlers on that logger before the first job keeps them;
otherwise the first line installs ``TaskLogHandler`` on the file named by ``TASK_TIME_LOG``.
Lines never propagate to the root logger from the default setup, so they do not also end
up in the worker's console output.
"""

from __future__ import annotations

import datetime
import logging
import os
import sys
import time
from collections.abc import Mapping
from typing import Any

from . import settings
from .appender import Appender
from .lines.clock import LineClock, format_line, timezone_from_env
from .lines.task import OPTIONAL_FIELDS, REQUIRED_FIELDS, TaskRun, format_fields

LOGGER_NAME = "pipeline.task_time"


def log_path_from_env(environ: Mapping[str, str] | None = None) -> str:
    """The log file path: ``TASK_TIME_LOG`` or the compose volume's default."""
    return settings.TASK_LOG.text(environ)


class TaskLineFormatter(logging.Formatter):
    """Renders a record as ``Time: <asctime> <message>``, the time in a fixed zone (UTC by default)."""

    def __init__(self, tz: datetime.tzinfo = datetime.UTC) -> None:
        super().__init__()
        self.clock = LineClock(tz)

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
    """Appends every record to the task-time log through an ``Appender`` (``pipeline.appender``):
    one unbuffered ``write`` per line, shared safely by the worker and its work horses,
    reopened after log rotation, and never glued to a fragment a full disk left."""

    def __init__(self, path: str | os.PathLike[str], level: int = logging.NOTSET) -> None:
        super().__init__(level)
        self.appender = Appender(
            path, describe="task-time log", variable=settings.TASK_LOG.variable, reporter=LOGGER_NAME
        )

    def open(self) -> None:
        """Open (or reopen) the file now; raise ``AppendError`` if it cannot be."""
        self.appender.open()

    def reopen_if_moved(self) -> None:
        """Reopen the file now if it was moved or deleted (a worker calls this before forking)."""
        self.appender.reopen_if_moved()

    def write_line(self, text: str) -> None:
        """Append one line; a failure is reported once on stderr, never raised."""
        self.appender.write_line(text)

    def emit(self, record: logging.LogRecord) -> None:
        self.appender.write_line(self.format(record))

    def close(self) -> None:
        self.appender.close()
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
    """Set up the task logger now and open its files, raising ``AppendError`` if one cannot be."""
    logger = get_task_logger()
    for handler in logger.handlers:
        if isinstance(handler, TaskLogHandler):
            handler.open()
    return logger


_logger: logging.Logger | None = None
_setup_error: str | None = None


def _direct_handler(logger: logging.Logger) -> tuple[TaskLogHandler, TaskLineFormatter] | None:
    """The default handler and its formatter when it is still the logger's only destination, untouched."""
    handler = _default_handler
    if handler is None:
        return None
    handlers = logger.handlers
    formatter = handler.formatter
    if (
        len(handlers) == 1
        and handlers[0] is handler
        and not logger.filters
        and not handler.filters
        and handler.level <= logging.INFO
        and isinstance(formatter, TaskLineFormatter)
    ):
        return handler, formatter
    return None


# Record attributes handed to application handlers: one per field after Time.
_RECORD_FIELDS = tuple(field.name for field in (*REQUIRED_FIELDS[1:], *OPTIONAL_FIELDS))


def write_task_line(run: TaskRun) -> None:
    """Log the line for one execution.

    Records handed to application handlers carry it as ``record.execution``
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
    fields = format_fields(run)
    direct = _direct_handler(logger)
    if direct is not None:
        # The same line the record path below gives, without building a LogRecord:
        # this runs once per job, and logging's machinery costs more than the write.
        handler, formatter = direct
        handler.write_line(formatter.line(time.time(), fields))
        return
    extra: dict[str, Any] = {name: getattr(run, name) for name in _RECORD_FIELDS}
    extra["execution"] = run
    logger.handle(logger.makeRecord(LOGGER_NAME, logging.INFO, __file__, 0, fields, (), None, extra=extra))
