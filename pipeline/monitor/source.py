"""A source of the monitor: one task system's queues on one broker, sampled, judged and written.

``BrokerSource`` holds what every source does the same way: a failed attempt writes one
``critical`` error line (so the gap shows in Kibana) and the loop goes on; stderr gets one
line per change of state, not per attempt; ``--check`` turns a failure into one critical
problem. ``rq_source.RqSource`` and ``celery_source.CelerySource`` say how to sample,
judge and write their broker.
"""

from __future__ import annotations

import time
from typing import Any

from pipeline.lines.queue import CRITICAL

from .metrics import SourceState
from .options import MonitorConfig
from .output import Output

Problems = list[tuple[str, str]]


class BrokerSource:
    """The loop's state for one source: the last good sample and the current fault, if any."""

    # Exceptions that are not a failed attempt but end the monitor (RQ: a Redis Cluster node).
    fatal: tuple[type[BaseException], ...] = ()

    def __init__(self, config: MonitorConfig, output: Output) -> None:
        self.config = config
        self.output = output
        self.previous: Any = None  # the last good sample
        self.fault: str | None = None  # the Error: word of the current fault
        self.metrics: SourceState | None = None  # what --metrics-port serves of this source

    # ------------------------------------------------------------------ what each source says

    @property
    def label(self) -> str:
        """The broker's name in the lines: ``host:port/db`` or the management API's ``host:port``."""
        raise NotImplementedError

    @property
    def subject(self) -> str:
        """What is sampled, for stderr and ``--check``: ``Redis at …``."""
        raise NotImplementedError

    def sample(self) -> Any:
        """One sample of the broker; raises whatever the broker answers when it cannot be read."""
        raise NotImplementedError

    def judge(self, sample: Any, previous: Any) -> Any:
        """The judgement of ``sample`` (``previous``: the last good one, or None); it has ``problems()``."""
        raise NotImplementedError

    def lines(self, sample: Any, judgement: Any) -> list[str]:
        """The fields of every line of a judged sample."""
        raise NotImplementedError

    def error_line(self, kind: str, reason: str) -> str:
        """The fields of the line of a failed attempt."""
        raise NotImplementedError

    def error_of(self, exc: BaseException) -> tuple[str, str]:
        """The ``Error:`` word and the one-line reason of a failed attempt."""
        raise NotImplementedError

    def summary(self, sample: Any) -> str:
        """What a good sample covered, for ``--check``'s ``OK`` line."""
        raise NotImplementedError

    # ------------------------------------------------------------------ the same for every source

    def step(self) -> bool:
        """Sample once and write its lines, or the error line; True when the sample worked."""
        try:
            sample = self.sample()
        except self.fatal:
            raise
        except Exception as exc:  # whatever the broker answers, the loop goes on and says why
            kind, reason = self.error_of(exc)
            self.output.write([self.error_line(kind, reason)], time.time())
            if self.metrics is not None:
                self.metrics.record_error(kind)
            if self.fault != kind:  # one stderr line per change of state, not per attempt
                retry = "" if self.config.once else "; retrying with backoff"
                self.output.say(f"cannot sample {self.subject} ({kind}): {reason}{retry}")
            self.fault = kind
            return False
        if self.fault is not None:
            self.output.say(f"{self.subject} can be sampled again")
            self.fault = None
        judgement = self.judge(sample, self.previous)
        self.output.write(self.lines(sample, judgement), sample.taken_at)
        if self.metrics is not None:
            self.metrics.record(sample, judgement)
        self.previous = sample
        return True

    def check(self, window: float) -> tuple[Problems, str]:
        """The problems over ``window`` seconds (two samples), or the failure as one critical problem;
        and what was sampled, for the ``OK`` line."""
        try:
            sample, first = self.sample(), None
            if window > 0:
                time.sleep(window)
                first, sample = sample, self.sample()
        except self.fatal:
            raise
        except Exception as exc:  # whatever the broker answers, --check says critical in one line
            kind, reason = self.error_of(exc)
            return [(CRITICAL, f"cannot sample {self.subject} ({kind}): {reason}")], ""
        return self.judge(sample, first).problems(), self.summary(sample)
