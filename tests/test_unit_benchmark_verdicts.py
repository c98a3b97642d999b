"""The overhead benchmarks' arithmetic without a worker: the shared verdict and the Celery rate window."""

from __future__ import annotations

import pytest

from benchmarks.celery_throughput import counts, rates
from benchmarks.verdicts import MET, MISSED, WITHIN_NOISE, judge, median_interval

pytestmark = [pytest.mark.unit]


def test_the_verdict_is_met_within_noise_or_missed_by_the_median_and_its_interval() -> None:
    assert judge([0.995, 1.0, 1.01, 0.99, 1.02], 0.99).word == MET
    noisy = judge([0.90, 0.95, 0.985, 1.03, 1.08], 0.99)
    assert noisy.median < 0.99 <= noisy.high and noisy.word == WITHIN_NOISE and not noisy.missed
    tight = judge([0.97, 0.975, 0.98, 0.972, 0.978], 0.99)
    assert tight.high < 0.99 and tight.word == MISSED and tight.missed
    assert tight.interval == f"{tight.low:.3f}..{tight.high:.3f}"


def test_grouped_values_widen_the_interval_by_the_difference_between_groups() -> None:
    # Four pairs of processes, each tight, each a little apart from the others: drawn as
    # groups, the interval takes in how far one pair's bias moves the median.
    groups = [[base + step * 0.001 for step in range(5)] for base in (0.975, 0.985, 0.995, 1.005)]
    low, high = median_interval(groups)
    flat_low, flat_high = median_interval([value for group in groups for value in group])
    assert low < flat_low < flat_high < high
    assert median_interval([1.0, 1.0, 1.0]) == (1.0, 1.0)


def test_each_worker_is_counted_over_the_window_both_were_draining() -> None:
    done = counts(100, 50)
    assert done == [0, 50, 100] and counts(120, 50) == [0, 50, 100, 120]
    # The plain worker drains 100 tasks in 1 s; the timed one started 0.1 s later and
    # drains at half the rate, so both are counted from 0.1 s to 1.0 s only.
    plain, timed = rates([10.0, 10.5, 11.0], [10.1, 11.1, 12.1], done)
    assert plain == pytest.approx(100.0) and timed == pytest.approx(50.0)


def test_the_task_cpu_the_target_needs_keeps_the_ratio_at_the_target() -> None:
    from benchmarks.celery_overhead import task_cpu_for

    assert task_cpu_for(50.0) == pytest.approx(4950.0)  # 99 times the extra for 0.99
    for extra in (10.0, 65.0, 84.0):
        plain = task_cpu_for(extra)
        assert plain / (plain + extra) == pytest.approx(0.99)
        assert (plain - 1) / (plain - 1 + extra) < 0.99  # any lighter task falls short
    assert task_cpu_for(50.0, 0.95) == pytest.approx(950.0)
