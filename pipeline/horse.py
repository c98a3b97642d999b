"""What a ``TimedWorker`` shares with the work horses it forks.

A page of memory, created by the worker before its first fork, tells the worker how far
its horse got: ``PERFORMING`` while the task runs, ``LOGGED`` once the horse wrote its own
line, ``IDLE`` when no task started. A horse that dies while ``PERFORMING`` still owes its
line, and the worker writes it. Outside a ``TimedWorker`` horse there is no page and
marking does nothing.
"""

from __future__ import annotations

import mmap
import signal
from contextlib import AbstractContextManager

from .appender import signals_held

IDLE, PERFORMING, LOGGED = 0, 1, 2
_page: mmap.mmap | None = None


def share_marker() -> mmap.mmap:
    """The marker page, created on first use; create it before forking so horses share it."""
    global _page
    if _page is None:
        _page = mmap.mmap(-1, mmap.PAGESIZE)
    return _page


def mark(state: int) -> None:
    """Record ``state`` for the worker that forked this process (no-op outside TimedWorker horses)."""
    if _page is not None:
        _page[0] = state


_ALARM = {signal.SIGALRM}


def alarm_deferred() -> AbstractContextManager[None]:
    """Hold SIGALRM (RQ's job timeouts) back while a line is written; it fires right after."""
    return signals_held(_ALARM)
