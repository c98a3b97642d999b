"""One sample of Celery's queues on RabbitMQ, read through the management API (HTTP, stdlib only).

Two requests per sample whatever the number of queues: ``GET /api/nodes`` and
``GET /api/queues/<vhost>``, both with ``columns=`` so the node sends only the figures the
monitor reads. The monitor's user needs only the ``monitoring`` tag and, on the vhost,
the permissions ``'^$' '^$' '^$'`` (no configure, write or read): it can list queues and
nodes, never publish or consume.

Latency is the age of ``head_message_timestamp``, the AMQP ``timestamp`` property of the
first message of a classic queue (``pipeline.celery.install`` sets it, in whole seconds);
quorum queues do not report it, so their latency is unknown.
"""

from __future__ import annotations

import base64
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from .celery_redis import INTERNAL_QUEUE_PREFIXES, INTERNAL_QUEUE_SUFFIXES, CeleryQueueStats

NODE_COLUMNS = "name,running,mem_used,mem_limit,mem_alarm,disk_free_alarm"
QUEUE_COLUMNS = "name,type,messages_ready,messages_unacknowledged,consumers,head_message_timestamp"
TIMEOUT = 10.0


class ApiError(Exception):
    """The management API could not be read; ``kind`` is the line's ``Error:`` word."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind = kind


@dataclass(frozen=True)
class Api:
    """The management API's address and credentials, and the vhost watched."""

    base: str  # scheme://host:port, no credentials, no trailing slash
    username: str
    password: str
    vhost: str
    amqp: tuple[str, int] | None = None  # the broker's AMQP address, to tell "no management plugin" apart

    @property
    def label(self) -> str:
        """``host:port`` of the API (the ``Node:`` of error lines), never the credentials."""
        return urlsplit(self.base).netloc


def vhost_of(broker_url: str) -> str:
    """The vhost of an ``amqp://`` URL as kombu reads it (``amqp://h//`` and ``amqp://h`` are ``/``)."""
    path = urlsplit(broker_url).path
    vhost = unquote(path[1:]) if path.startswith("/") else unquote(path)
    return vhost or "/"


def api_from_urls(api_url: str, broker_url: str) -> Api:
    """The ``Api`` for ``--rabbitmq-api http://user:pass@host:15672`` and ``--celery-broker amqp://…/vhost``."""
    parts = urlsplit(api_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"--rabbitmq-api {api_url!r} is not an http(s)://user:password@host:port URL")
    netloc = parts.hostname if parts.port is None else f"{parts.hostname}:{parts.port}"
    broker = urlsplit(broker_url)
    amqp = (broker.hostname, broker.port or 5672) if broker.hostname else None
    return Api(
        f"{parts.scheme}://{netloc}",
        unquote(parts.username or "guest"),
        unquote(parts.password or "guest"),
        vhost_of(broker_url),
        amqp,
    )


@dataclass(frozen=True)
class NodeStats:
    """One RabbitMQ node: memory against its limit (the high watermark) and its alarms."""

    name: str
    running: bool
    mem_used: int
    mem_limit: int
    mem_alarm: bool
    disk_free_alarm: bool

    @property
    def memory_used_pct(self) -> float:
        return 100.0 * self.mem_used / self.mem_limit if self.mem_limit else 0.0


@dataclass(frozen=True)
class RabbitSample:
    """One sample of Celery on RabbitMQ: the nodes and the vhost's queues."""

    taken_at: float
    duration: float
    nodes: list[NodeStats]
    queues: list[CeleryQueueStats] = field(default_factory=list)
    requests: int = 0


def _amqp_answers(api: Api) -> bool:
    if api.amqp is None:
        return False
    try:
        with socket.create_connection(api.amqp, timeout=2):
            return True
    except OSError:
        return False


def get_json(api: Api, path: str) -> Any:
    """``GET`` one API path as JSON; raises ``ApiError`` with a one-line reason."""
    request = urllib.request.Request(api.base + path)
    token = base64.b64encode(f"{api.username}:{api.password}".encode()).decode()
    request.add_header("Authorization", f"Basic {token}")
    where = f"{api.label}{path.split('?')[0]}"
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise _refusal(exc, api, where) from None
        if exc.code == 403:
            raise ApiError("permission", f"HTTP 403 from {where}: the user needs the monitoring tag") from None
        if exc.code == 404 and path.startswith("/api/queues/"):
            raise ApiError("vhost", f"vhost {api.vhost!r} does not exist (HTTP 404 from {where})") from None
        if exc.code == 404:
            raise ApiError("management", f"HTTP 404 from {where}: is this RabbitMQ's management API?") from None
        raise ApiError("error", f"HTTP {exc.code} from {where}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if _amqp_answers(api):
            host, port = api.amqp or ("", 0)
            raise ApiError(
                "management",
                f"no management API at {api.label} ({reason}) while AMQP answers on {host}:{port}: "
                "enable the plugin (rabbitmq-plugins enable rabbitmq_management)",
            ) from None
        raise ApiError("unreachable", f"cannot reach the management API at {api.label}: {reason}") from None
    try:
        return json.loads(body)
    except ValueError:
        raise ApiError("management", f"{where} did not answer JSON: is this RabbitMQ's management API?") from None


def _refusal(exc: urllib.error.HTTPError, api: Api, where: str) -> ApiError:
    """What a 401 means, from the reason RabbitMQ gives: a missing tag, a missing vhost permission, or the login."""
    try:
        reason = str(json.loads(exc.read()).get("reason", ""))
    except (ValueError, AttributeError, OSError):
        reason = ""
    if reason in ("Not management user", "Not monitor user"):
        return ApiError("permission", f"HTTP 401 from {where} ({reason}): give the user the monitoring tag")
    if "virtual host" in reason:
        grant = f"set_permissions -p {api.vhost} {api.username} '^$' '^$' '^$'"
        return ApiError("permission", f"HTTP 401 from {where} ({reason}): {grant}")
    return ApiError("auth", f"HTTP 401 from {where}: wrong user or password")


def _count(item: dict[str, Any], key: str) -> int:
    value = item.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def _queue(item: dict[str, Any], now: float) -> CeleryQueueStats:
    ready = _count(item, "messages_ready")
    head = item.get("head_message_timestamp")
    why = None
    if ready == 0:
        latency: float | None = 0.0
    elif isinstance(head, int | float) and not isinstance(head, bool):
        latency = max(0.0, now - float(head))
    else:
        latency = None
        if item.get("type") == "quorum":
            why = "quorum queues do not report head_message_timestamp"
        else:
            why = "the head message has no AMQP timestamp (stamp it with pipeline.celery.install) or is paged out"
    consumers = _count(item, "consumers")
    return CeleryQueueStats(
        str(item.get("name")), ready, latency, _count(item, "messages_unacknowledged"), consumers, why
    )


def is_internal(name: str) -> bool:
    """Celery's remote-control, event and reply queues, and the broker's own ``amq.`` ones."""
    return name.startswith(("amq.", *INTERNAL_QUEUE_PREFIXES)) or name.endswith(INTERNAL_QUEUE_SUFFIXES)


def take_rabbit_sample(api: Api, queues: Sequence[str] | None = None) -> RabbitSample:
    """Two requests: the nodes, then every queue of the vhost (only ``queues`` when named;
    a named queue the vhost lacks is reported with ``missing`` set)."""
    started = time.perf_counter()
    taken_at = time.time()
    nodes = [
        NodeStats(
            str(item.get("name")),
            bool(item.get("running", True)),
            _count(item, "mem_used"),
            _count(item, "mem_limit"),
            bool(item.get("mem_alarm")),
            bool(item.get("disk_free_alarm")),
        )
        for item in get_json(api, f"/api/nodes?columns={NODE_COLUMNS}")
    ]
    listed = get_json(api, f"/api/queues/{quote(api.vhost, safe='')}?columns={QUEUE_COLUMNS}")
    now = time.time()
    found = {str(item.get("name")): _queue(item, now) for item in listed if isinstance(item, dict)}
    if queues is None:
        result = [found[name] for name in sorted(found) if not is_internal(name)]
    else:
        result = [found.get(name) or CeleryQueueStats(name, 0, None, None, None, missing=True) for name in queues]
    return RabbitSample(taken_at, time.perf_counter() - started, nodes, result, requests=2)
