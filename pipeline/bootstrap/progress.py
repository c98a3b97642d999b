"""The one-line progress bootstrap prints, and waiting for a service to be ready."""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Callable
from typing import TextIO

from .errors import Unreachable


class Progress:
    """Prints ``<service>: <what>: <outcome>`` lines and counts the outcomes."""

    def __init__(self, out: TextIO | None = None, dry_run: bool = False) -> None:
        self.out = out or sys.stdout
        self.dry_run = dry_run
        self.outcomes: Counter[str] = Counter()

    def say(self, service: str, message: str) -> None:
        print(f"{service}: {message}", file=self.out, flush=True)

    def outcome(self, service: str, what: str, outcome: str, detail: str = "") -> None:
        """Record ``outcome`` (created, updated, unchanged, skipped, …) for ``what``."""
        self.outcomes[outcome] += 1
        if self.dry_run and outcome in ("created", "updated"):
            outcome = f"would be {outcome}"
        self.say(service, f"{what}: {outcome}{f' ({detail})' if detail else ''}")

    def summary(self) -> str:
        changed = self.outcomes["created"] + self.outcomes["updated"]
        counts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.outcomes.items()))
        if self.dry_run:
            return f"dry run: {changed} change(s) would be made ({counts})"
        return f"done: {counts}" if changed else f"done: nothing changed ({counts})"


def wait_for(probe: Callable[[], str | None], service: str, where: str, timeout: float, progress: Progress) -> None:
    """Call ``probe`` every 2 s until it returns None (ready) or ``timeout`` seconds pass.

    ``probe`` returns why the service is not ready yet, or raises ``BootstrapError`` for
    what waiting cannot fix (wrong credentials). Progress is printed every 10 s.
    """
    started = time.monotonic()
    next_report = started
    while (reason := probe()) is not None:
        waited = time.monotonic() - started
        if waited > timeout:
            raise Unreachable(f"{service}: not ready at {where} after {timeout:.0f}s: {reason}")
        if time.monotonic() >= next_report:
            progress.say(service, f"waiting for {where}: {reason} ({waited:.0f}s of {timeout:.0f}s)")
            next_report = time.monotonic() + 10
        time.sleep(2)
