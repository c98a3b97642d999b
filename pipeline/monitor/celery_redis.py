"""One sample of Celery's queues on a Redis broker, read with raw, pipelined read commands.

Key names are those kombu's Redis transport writes (checked against kombu 5.7), each
behind the transport's ``global_keyprefix``:

- a queue is a list named after it, LPUSHed and BRPOPed, so its oldest message is at the
  right end (``LINDEX -1``); with priorities, one list per priority step:
  ``<queue>``, ``<queue><sep>3``, ``<queue><sep>6``, ``<queue><sep>9`` (``sep`` ``\\x06\\x16``);
- ``_kombu.binding.<exchange>`` sets whose members are ``<routing key><sep><pattern><sep><queue>``;
- ``unacked``, a hash of every message a worker took and has not acknowledged, all queues
  together (prefetched and ETA messages included).

A sample costs one round trip (``INFO``, ``HLEN unacked``), the queue discovery when no
queue is named (``SCAN MATCH _kombu.binding.*`` over the database's keys, then
``SMEMBERS``), and one round trip of two commands per queue and priority step
(``LLEN``, ``LINDEX -1``), whatever a queue's length.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from redis import Redis

from pipeline import settings

from .sample import RedisStats, redis_stats

PUBLISHED_AT = settings.CELERY_PUBLISHED_HEADER  # the header pipeline.celery.install stamps (epoch seconds)
# kombu's PRIORITY_STEPS and its priority and binding separator, as the settings write them.
DEFAULT_PRIORITY_STEPS = tuple(int(step) for step in settings.CELERY_PRIORITY_STEPS.default.split(","))
DEFAULT_SEP = settings.CELERY_SEP.default.encode().decode("unicode_escape")
BINDING_PREFIX = "_kombu.binding."
UNACKED_KEY = "unacked"
# Exchanges and queues of Celery's own machinery (remote control, events, replies): not task queues.
INTERNAL_EXCHANGE_SUFFIXES = (".pidbox",)
INTERNAL_EXCHANGES = ("celeryev",)
INTERNAL_QUEUE_SUFFIXES = (".pidbox",)
INTERNAL_QUEUE_PREFIXES = ("celeryev.",)
SCAN_COUNT = 1000


@dataclass(frozen=True)
class KombuLayout:
    """How kombu names its keys: ``global_keyprefix``, the separator and the priority steps."""

    keyprefix: str = ""
    sep: str = DEFAULT_SEP
    priority_steps: tuple[int, ...] = DEFAULT_PRIORITY_STEPS

    def lists(self, queue: str) -> list[str]:
        """Every list of ``queue``, highest priority first (kombu's ``_q_for_pri``)."""
        return [self.keyprefix + (queue if step == 0 else f"{queue}{self.sep}{step}") for step in self.priority_steps]

    @property
    def unacked(self) -> str:
        return self.keyprefix + UNACKED_KEY

    @property
    def binding_pattern(self) -> str:
        return _glob_escape(self.keyprefix + BINDING_PREFIX) + "*"


@dataclass(frozen=True)
class CeleryQueueStats:
    """One Celery queue: messages waiting, the oldest one's age, and what the broker knows of its workers."""

    name: str
    depth: int  # messages ready: on Redis every priority list, on RabbitMQ messages_ready
    latency: float | None  # seconds the oldest waiting message has waited; None when unknown
    reserved: int | None  # taken by workers, not acknowledged; None when the broker cannot tell per queue
    consumers: int | None  # None when the broker cannot tell (Redis)
    unknown_latency: str | None = None  # why the latency is unknown while messages wait
    missing: bool = False  # named with --queues but absent from the broker (RabbitMQ)


@dataclass(frozen=True)
class CeleryRedisSample:
    """One sample of Celery on Redis: the server, the global unacked count, every queue."""

    taken_at: float
    duration: float
    redis: RedisStats
    unacked: int
    queues: list[CeleryQueueStats] = field(default_factory=list)


def _glob_escape(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value


def message_moment(payload: bytes | str | None, now: float) -> tuple[float | None, str | None]:
    """When a waiting message became ready (epoch seconds), or None and why not.

    The moment is the ``task_time_published_at`` header, or the message's ``eta`` when that
    is later and already past; a message whose ``eta`` is still ahead is not waiting yet
    (its moment is ``now``).
    """
    try:
        message = json.loads(payload) if payload is not None else None
        headers = message.get("headers") or {} if isinstance(message, dict) else None
    except ValueError:
        headers = None
    if not isinstance(headers, dict):
        return None, "the oldest message is not a kombu JSON message"
    published = headers.get(PUBLISHED_AT)
    if not isinstance(published, int | float) or isinstance(published, bool):
        return None, f"the oldest message has no {PUBLISHED_AT} header (stamp it with pipeline.celery.install)"
    moment = float(published)
    eta = headers.get("eta")
    if isinstance(eta, str):
        try:
            due = datetime.fromisoformat(eta).timestamp()
        except ValueError:
            due = None
        if due is not None:
            moment = now if due > now else max(moment, due)
    return moment, None


def discover_queues(connection: Redis, layout: KombuLayout) -> list[str]:
    """Every task queue bound in kombu's binding sets (``SCAN`` then ``SMEMBERS``), sorted."""
    exchanges: set[str] = set()
    prefix = layout.keyprefix + BINDING_PREFIX
    for key in connection.scan_iter(match=layout.binding_pattern, count=SCAN_COUNT):
        exchange = _text(key)[len(prefix) :]
        if exchange in INTERNAL_EXCHANGES or exchange.endswith(INTERNAL_EXCHANGE_SUFFIXES):
            continue
        exchanges.add(exchange)
    if not exchanges:
        return []
    pipe = connection.pipeline(transaction=False)
    for exchange in sorted(exchanges):
        pipe.smembers(prefix + exchange)
    names: set[str] = set()
    for members in pipe.execute():
        for member in members:
            queue = _text(member).split(layout.sep)[-1]
            if queue and not queue.endswith(INTERNAL_QUEUE_SUFFIXES) and not queue.startswith(INTERNAL_QUEUE_PREFIXES):
                names.add(queue)
    return sorted(names)


def take_celery_redis_sample(
    connection: Redis, layout: KombuLayout, queues: Sequence[str] | None = None
) -> CeleryRedisSample:
    """Read one sample: ``INFO`` and ``HLEN unacked``, the queues, then ``LLEN`` and
    ``LINDEX -1`` of every priority list of every queue in one round trip.

    Raises redis-py's errors when Redis cannot be read.
    """
    started = time.perf_counter()
    taken_at = time.time()
    pipe = connection.pipeline(transaction=False)
    pipe.info()
    pipe.hlen(layout.unacked)
    info, unacked = pipe.execute()
    names = list(queues) if queues is not None else discover_queues(connection, layout)

    steps = len(layout.priority_steps)
    pipe = connection.pipeline(transaction=False)
    for name in names:
        for key in layout.lists(name):
            pipe.llen(key)
            pipe.lindex(key, -1)
    replies: list[Any] = pipe.execute() if names else []
    now = time.time()

    result = []
    for index, name in enumerate(names):
        row = replies[index * 2 * steps : (index + 1) * 2 * steps]
        depth, oldest, why = 0, None, None
        for length, tail in zip(row[0::2], row[1::2], strict=True):
            if not length or tail is None:
                continue
            depth += length
            moment, reason = message_moment(tail, now)
            if moment is None:
                why = why or reason
            elif oldest is None or moment < oldest:
                oldest = moment
        if depth == 0:
            latency: float | None = 0.0
        elif why is not None or oldest is None:
            latency = None
        else:
            latency = max(0.0, now - oldest)
        result.append(CeleryQueueStats(name, depth, latency, None, None, why if depth and latency is None else None))
    stats = redis_stats(info, False)
    return CeleryRedisSample(taken_at, time.perf_counter() - started, stats, int(unacked), result)
