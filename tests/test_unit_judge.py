"""The monitor's alert judgement on hand-made samples: numbers and thresholds in, status and reasons out."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline.lines.queue import CRITICAL, OK, WARN
from pipeline.monitor.judge import Thresholds, judge, judge_queue, judge_redis, parse_latency_limits, worst
from pipeline.monitor.sample import QueueStats, RedisStats, Sample

pytestmark = [pytest.mark.unit]

MB = 1024 * 1024
LIMITS = Thresholds(memory_warn=80.0, memory_critical=90.0, max_latency={"high": 30.0, "default": 300.0})


def redis_stats(**changes: object) -> RedisStats:
    """A healthy server (50% of maxmemory, noeviction) with ``changes``."""
    healthy = RedisStats(
        used_memory=50 * MB,
        maxmemory=100 * MB,
        maxmemory_policy="noeviction",
        evicted_keys=0,
        oom_rejections=0,
        suspended=False,
    )
    return dataclasses.replace(healthy, **changes)


def queue_stats(name: str = "default", **changes: object) -> QueueStats:
    """A quiet queue with one idle worker, with ``changes``."""
    quiet = QueueStats(
        name=name,
        depth=0,
        latency=None,
        missing=0,
        started=0,
        abandoned=0,
        failed=0,
        deferred=0,
        scheduled=0,
        overdue=0,
        workers=1,
        busy=0,
    )
    return dataclasses.replace(quiet, **changes)


def test_a_healthy_server_is_ok_with_no_reason() -> None:
    verdict = judge_redis(redis_stats(), None, LIMITS)
    assert (verdict.status, verdict.problems, verdict.reason) == (OK, [], "")


@pytest.mark.parametrize(
    ("used_mb", "status", "reason"),
    [
        (79.99, OK, ""),
        (80, WARN, "memory 80.0% of maxmemory >= 80%"),
        (89.99, WARN, "memory 90.0% of maxmemory >= 80%"),
        (90, CRITICAL, "memory 90.0% of maxmemory >= 90%"),
        (100, CRITICAL, "memory 100.0% of maxmemory >= 90%"),
    ],
)
def test_memory_warns_and_turns_critical_at_the_thresholds_inclusive(used_mb: float, status: str, reason: str) -> None:
    verdict = judge_redis(redis_stats(used_memory=int(used_mb * MB)), None, LIMITS)
    assert (verdict.status, verdict.reason) == (status, reason)


def test_memory_thresholds_come_from_the_thresholds_given() -> None:
    strict = Thresholds(memory_warn=40.0, memory_critical=45.0, max_latency={})
    assert judge_redis(redis_stats(used_memory=44 * MB), None, strict).status == WARN
    assert judge_redis(redis_stats(used_memory=45 * MB), None, strict).reason == "memory 45.0% of maxmemory >= 45%"


def test_no_maxmemory_warns_whatever_the_memory_used() -> None:
    verdict = judge_redis(redis_stats(maxmemory=0, used_memory=10_000 * MB), None, LIMITS)
    assert verdict.status == WARN
    assert verdict.reason == "no maxmemory: Redis grows until the host kills it"


def test_an_evicting_policy_warns_naming_it() -> None:
    verdict = judge_redis(redis_stats(maxmemory_policy="allkeys-lru"), None, LIMITS)
    assert verdict.status == WARN
    assert verdict.reason == "maxmemory-policy allkeys-lru: RQ's keys can be evicted silently"


def test_evictions_and_oom_rejections_count_only_since_the_previous_sample() -> None:
    before = redis_stats(evicted_keys=5, oom_rejections=2)
    assert judge_redis(redis_stats(evicted_keys=5, oom_rejections=2), before, LIMITS).status == OK
    # Without a previous sample, counters are history: nothing to compare with.
    assert judge_redis(redis_stats(evicted_keys=5, oom_rejections=2), None, LIMITS).status == OK
    verdict = judge_redis(redis_stats(evicted_keys=8, oom_rejections=3), before, LIMITS)
    assert verdict.status == CRITICAL
    assert verdict.problems == [
        (CRITICAL, "3 keys evicted since last sample"),
        (CRITICAL, "1 commands rejected with OOM since last sample"),
    ]


def test_suspended_workers_warn() -> None:
    verdict = judge_redis(redis_stats(suspended=True), None, LIMITS)
    assert (verdict.status, verdict.reason) == (WARN, "workers are suspended (rq suspend)")


def test_problems_are_worst_first_and_the_reason_joins_them() -> None:
    stats = redis_stats(used_memory=95 * MB, maxmemory_policy="volatile-lru", suspended=True)
    verdict = judge_redis(stats, None, LIMITS)
    assert verdict.status == CRITICAL
    assert [level for level, _ in verdict.problems] == [CRITICAL, WARN, WARN]
    assert verdict.reason == (
        "memory 95.0% of maxmemory >= 90%; maxmemory-policy volatile-lru: RQ's keys can be evicted silently; "
        "workers are suspended (rq suspend)"
    )


def test_a_quiet_queue_is_ok() -> None:
    assert judge_queue(queue_stats(), LIMITS).status == OK


def test_waiting_jobs_and_no_worker_is_critical_and_an_empty_queue_without_worker_is_not() -> None:
    verdict = judge_queue(queue_stats(depth=4, workers=0), LIMITS)
    assert (verdict.status, verdict.reason) == (CRITICAL, "4 jobs waiting and no live worker")
    assert judge_queue(queue_stats(depth=0, workers=0), LIMITS).status == OK
    assert judge_queue(queue_stats(depth=4, workers=1, busy=1), LIMITS).status == OK


def test_latency_limits_per_queue_and_the_default_for_the_rest() -> None:
    assert judge_queue(queue_stats("high", depth=1, latency=30.0), LIMITS).status == OK
    verdict = judge_queue(queue_stats("high", depth=1, latency=31.0), LIMITS)
    assert (verdict.status, verdict.reason) == (WARN, "latency 31s > 30s")
    assert judge_queue(queue_stats("other", depth=1, latency=299.0), LIMITS).status == OK
    assert judge_queue(queue_stats("other", depth=1, latency=301.0), LIMITS).reason == "latency 301s > 300s"
    # Unknown latency is no evidence; no default entry means no limit for unnamed queues.
    assert judge_queue(queue_stats("high", depth=1, latency=None), LIMITS).status == OK
    only_high = Thresholds(max_latency={"high": 30.0})
    assert only_high.latency_limit("other") is None
    assert judge_queue(queue_stats("other", depth=1, latency=10_000.0), only_high).status == OK


def test_abandoned_and_overdue_jobs_warn() -> None:
    verdict = judge_queue(queue_stats(abandoned=2, overdue=3), LIMITS)
    assert verdict.status == WARN
    assert verdict.problems == [
        (WARN, "2 abandoned jobs (worker died mid-job)"),
        (WARN, "3 scheduled jobs overdue (is a scheduler running?)"),
    ]


def test_judge_counts_new_failures_per_queue_since_the_previous_sample() -> None:
    previous = Sample(1.0, 0.01, redis_stats(), [queue_stats("a", failed=3), queue_stats("b", failed=7)])
    current = Sample(2.0, 0.01, redis_stats(), [queue_stats("a", failed=5), queue_stats("b", failed=2)])
    current = dataclasses.replace(current, queues=[*current.queues, queue_stats("c", failed=9)])
    judgement = judge(current, previous, LIMITS)
    # A queue first seen, or a failed registry that shrank (cleaned), has no new failures.
    assert judgement.new_failed == {"a": 2, "b": 0, "c": 0}
    assert judge(current, None, LIMITS).new_failed == {"a": 0, "b": 0, "c": 0}


def test_judge_uses_the_previous_redis_counters_and_lists_problems_redis_first() -> None:
    previous = Sample(1.0, 0.01, redis_stats(evicted_keys=1), [])
    queues = [queue_stats("slow", depth=1, latency=400.0), queue_stats("orphan", depth=2, workers=0)]
    current = Sample(2.0, 0.01, redis_stats(evicted_keys=2, suspended=True), queues)
    judgement = judge(current, previous, LIMITS)
    assert judgement.redis.status == CRITICAL
    assert {name: verdict.status for name, verdict in judgement.queues.items()} == {"slow": WARN, "orphan": CRITICAL}
    assert judgement.problems() == [
        (CRITICAL, "redis: 1 keys evicted since last sample"),
        (WARN, "redis: workers are suspended (rq suspend)"),
        (WARN, "queue slow: latency 400s > 300s"),
        (CRITICAL, "queue orphan: 2 jobs waiting and no live worker"),
    ]


def test_worst_of_statuses() -> None:
    assert worst([]) == OK
    assert worst([OK, WARN, OK]) == WARN
    assert worst([WARN, CRITICAL, OK]) == CRITICAL


def test_latency_limits_parse_names_and_seconds() -> None:
    assert parse_latency_limits("high=30, default=300") == {"high": 30.0, "default": 300.0}
    assert parse_latency_limits("") == {}
    assert parse_latency_limits("a=b=1.5,") == {"a=b": 1.5}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("high", "latency limit 'high' is not QUEUE=SECONDS"),
        ("=30", "latency limit '=30' is not QUEUE=SECONDS"),
        ("high=soon", "latency limit 'high=soon': 'soon' is not a number of seconds"),
        ("high=0", "latency limit 'high=0' must be positive"),
        ("high=nan", "latency limit 'high=nan' must be positive"),
    ],
)
def test_bad_latency_limits_are_refused_with_a_one_line_reason(text: str, message: str) -> None:
    with pytest.raises(ValueError) as refused:
        parse_latency_limits(text)
    assert str(refused.value) == message
