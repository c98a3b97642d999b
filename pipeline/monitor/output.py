"""Where the monitor's lines and voice go: the queue-monitor log, and one line on stderr per change of state.

A sample's lines are one ``write``, made with SIGTERM and SIGINT held, so a stopped monitor
never leaves half a sample. Everything said on stderr is escaped with ``shown_text``: data
(a queue name, a broker's error text) cannot forge an output line.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass

from pipeline.appender import Appender, signals_held
from pipeline.lines.clock import LineClock, format_line
from pipeline.lines.fields import shown_name, shown_text

from .options import PROG

HELD_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@dataclass
class Output:
    """The monitor's log (None with ``--check``: nothing is written) and its stderr voice."""

    name: str  # the monitor's --name
    appender: Appender | None
    clock: LineClock
    written: bool = True  # whether the last write reached the log

    def say(self, text: str) -> None:
        """One line on stderr, escaped."""
        sys.stderr.write(f"{PROG} {shown_name(self.name)}: {shown_text(text)}\n")
        sys.stderr.flush()

    def write(self, fields: list[str], timestamp: float) -> bool:
        """Write one sample's lines: all of them in one ``write``, never half (SIGTERM waits); whether they were."""
        if self.appender is None:
            return True
        with signals_held(HELD_SIGNALS):
            self.written = self.appender.write_lines([format_line(timestamp, text, self.clock) for text in fields])
        return self.written
