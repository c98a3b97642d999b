"""RQ's key layout in Redis (rq 2.x), and the keys of a sample that turned out of the wrong type.

Key names are those rq 2.x writes (checked against rq 2.12): ``rq:queues``,
``rq:queue:<q>``, ``rq:job:<id>``, the registries ``rq:wip:<q>`` (started; rq 1.x called
it ``rq:started:<q>``), ``rq:failed:<q>``, ``rq:deferred:<q>``, ``rq:scheduled:<q>``, the
worker sets ``rq:workers:<q>`` and hashes ``rq:worker:<name>``, and ``rq:suspended``.
"""

from __future__ import annotations

from typing import Any

from redis import Redis

from pipeline.lines.fields import shown_name

QUEUES_KEY = "rq:queues"
QUEUE_PREFIX = "rq:queue:"
JOB_PREFIX = "rq:job:"
WORKER_PREFIX = "rq:worker:"
STARTED_REGISTRY = "rq:wip:{}"
FAILED_REGISTRY = "rq:failed:{}"
DEFERRED_REGISTRY = "rq:deferred:{}"
SCHEDULED_REGISTRY = "rq:scheduled:{}"
WORKERS_BY_QUEUE = "rq:workers:{}"
SUSPENDED_KEY = "rq:suspended"
RQ_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

# Commands sent per queue in the second round trip (LLEN, LRANGE, 2 x ZCARD/ZCOUNT for
# started, ZCARD failed, ZCARD deferred, ZCARD/ZCOUNT scheduled, SMEMBERS workers).
COMMANDS_PER_QUEUE = 9
REGISTRIES = (STARTED_REGISTRY, FAILED_REGISTRY, DEFERRED_REGISTRY, SCHEDULED_REGISTRY)
# The type each of those commands needs (TYPE's names), in the same order.
ROW_TYPES = ("list", "list", "zset", "zset", "zset", "zset", "zset", "zset", "set")
# TYPE's answers as a reason says them.
_TYPE_WORDS = {"string": "a string", "list": "a list", "set": "a set", "zset": "a sorted set", "hash": "a hash"}


def text(value: bytes | str) -> str:
    """A key or name as text; bytes that are not UTF-8 kept as surrogates."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def raw(value: bytes | str) -> bytes:
    """A key or name as the bytes Redis holds."""
    return value if isinstance(value, bytes) else value.encode("utf-8", "surrogateescape")


def shown(key: bytes) -> str:
    """A key as a reason names it: decoded, every byte that is not UTF-8 and every control character escaped."""
    return shown_name(text(key))


class BadKeys:
    """Keys that answered ``WRONGTYPE``, with the type they should have had; any other error is raised."""

    def __init__(self) -> None:
        self.expected: dict[bytes, str] = {}

    def read(self, result: Any, key: bytes, expected: str) -> Any:
        """``result``, or None when ``key`` is of the wrong type."""
        if isinstance(result, Exception):
            if not str(result).startswith("WRONGTYPE"):
                raise result
            self.expected.setdefault(key, expected)
            return None
        return result

    def reasons(self, connection: Redis) -> dict[bytes, str]:
        """One reason per bad key, e.g. ``rq:wip:x is a string, not a sorted set``: one round trip, only when needed."""
        if not self.expected:
            return {}
        pipe = connection.pipeline(transaction=False)
        for key in self.expected:
            pipe.type(key)
        found = pipe.execute(raise_on_error=False)
        reasons = {}
        for (key, expected), kind in zip(self.expected.items(), found, strict=True):
            want = _TYPE_WORDS.get(expected, f"a {expected}")
            actual = "" if isinstance(kind, Exception) else text(kind)
            if actual in ("", "none", expected):  # changed between the two reads
                reasons[key] = f"{shown(key)} is not {want}"
            else:
                reasons[key] = f"{shown(key)} is {_TYPE_WORDS.get(actual, f'a {shown_name(actual)}')}, not {want}"
        return reasons
