"""The verdicts of the overhead benchmarks: a median, its 95% bootstrap interval, met or not.

Batch-to-batch noise on a shared machine is several percent, so a median ratio a little
under the target does not show a miss: a 95% bootstrap interval of the median tells how
far noise alone moves it. Below the target with the interval reaching it is "within
noise" (this run cannot tell); below with the whole interval under it is "missed".
``benchmarks.job_overhead`` and ``benchmarks.celery_overhead`` judge with ``judge``.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from typing import NamedTuple

MET, WITHIN_NOISE, MISSED = "met", "within noise", "missed"


class Verdict(NamedTuple):
    """The median of per-pair ratios, its 95% bootstrap interval, and the word for it against the target."""

    median: float
    low: float
    high: float
    word: str

    @property
    def missed(self) -> bool:
        """Whether the target is missed beyond the noise."""
        return self.word == MISSED

    @property
    def interval(self) -> str:
        """``low..high``, three decimals each."""
        return f"{self.low:.3f}..{self.high:.3f}"


def _grouped(values: Sequence[float] | Sequence[Sequence[float]]) -> list[list[float]]:
    """``values`` as groups: each value a group of its own unless they come grouped."""
    return [list(value) if isinstance(value, Sequence) else [value] for value in values]


def median_interval(values: Sequence[float] | Sequence[Sequence[float]], rounds: int = 2000) -> tuple[float, float]:
    """A 95% bootstrap interval for the median of ``values``: how far noise alone moves it.

    ``values`` may come in groups (one sequence per group: the rounds of one pair of worker
    processes); then groups are drawn first and values within each drawn group next, so a
    difference between groups widens the interval as it should. Ungrouped values are
    drawn one by one, the plain bootstrap.
    """
    rng = random.Random(1)
    groups = _grouped(values)
    medians = []
    for _ in range(rounds):
        drawn: list[float] = []
        for group in rng.choices(groups, k=len(groups)):
            drawn += group if len(group) == 1 else rng.choices(group, k=len(group))
        medians.append(statistics.median(drawn))
    medians.sort()
    return medians[int(rounds * 0.025)], medians[int(rounds * 0.975) - 1]


def judge(values: Sequence[float] | Sequence[Sequence[float]], target: float) -> Verdict:
    """The verdict on ``values`` (ratios timed/plain, or any figure where higher is better) against ``target``.

    One by one, or grouped as ``median_interval`` takes them.
    """
    median = statistics.median(value for group in _grouped(values) for value in group)
    low, high = median_interval(values)
    if median >= target:
        word = MET
    elif high >= target:
        word = WITHIN_NOISE  # the interval includes the target: this run cannot tell
    else:
        word = MISSED
    return Verdict(median, low, high, word)
