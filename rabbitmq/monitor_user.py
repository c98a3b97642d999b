"""Creates or updates the Celery queue monitor's RabbitMQ user through the management API.

The user gets the ``monitoring`` tag only and ``'^$' '^$' '^$'`` on the vhost ``/``: it can
list the queues and the nodes, never publish or consume (docs/queue-health.md, "Celery on
RabbitMQ"). The same as, by hand:

    rabbitmqctl add_user monitor PASSWORD
    rabbitmqctl set_user_tags monitor monitoring
    rabbitmqctl set_permissions -p / monitor '^$' '^$' '^$'

The compose service ``rabbitmq-setup`` runs it once RabbitMQ is healthy; ``celery-monitor``
starts when it has succeeded. Idempotent: each run sets the password, the tag and the
permissions again. Standard library only; it never prints a password.

Environment: ``RABBITMQ_API`` (http://host:15672, no credentials), ``RABBITMQ_USER`` and
``RABBITMQ_PASSWORD`` (an administrator), ``RABBITMQ_MONITOR_USER`` and
``RABBITMQ_MONITOR_PASSWORD``. Exit 0 when the user is set, 1 with one line on stderr otherwise.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlsplit

VHOST = "/"
NOTHING = "^$"  # a permission pattern no resource name matches
WAIT_SECONDS = 120  # for the management API, which may answer a little after the node's ping


def request(base: str, method: str, path: str, user: tuple[str, str], body: Any = None) -> Any:
    """One API request as ``user``; the JSON answer (None when empty). Credentials go in a header, never a URL."""
    data = None if body is None else json.dumps(body).encode()
    call = urllib.request.Request(base.rstrip("/") + path, data=data, method=method)
    call.add_header("Authorization", "Basic " + base64.b64encode(":".join(user).encode()).decode())
    call.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(call, timeout=10) as response:
        text = response.read()
    return json.loads(text) if text else None


def wait_for_api(base: str, admin: tuple[str, str], seconds: float = WAIT_SECONDS) -> None:
    """Until the API answers the administrator; an HTTP 4xx (wrong password, not an administrator) fails at once."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            request(base, "GET", "/api/overview", admin)
            return
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or time.monotonic() > deadline:
                raise
        except OSError:  # refused, reset, timed out: not listening yet
            if time.monotonic() > deadline:
                raise
        time.sleep(1)


def set_monitor_user(base: str, admin: tuple[str, str], monitor: tuple[str, str]) -> None:
    """Create or update ``monitor``: its password, the ``monitoring`` tag, no permission on ``VHOST``."""
    name = quote(monitor[0], safe="")
    request(base, "PUT", f"/api/users/{name}", admin, {"password": monitor[1], "tags": "monitoring"})
    nothing = {"configure": NOTHING, "write": NOTHING, "read": NOTHING}
    request(base, "PUT", f"/api/permissions/{quote(VHOST, safe='')}/{name}", admin, nothing)
    # The new password works, and the user is what the broker says it is.
    tags = request(base, "GET", "/api/whoami", monitor)["tags"]
    if tags not in ("monitoring", ["monitoring"]):
        raise RuntimeError(f"user {monitor[0]!r} has the tags {tags!r}, not only 'monitoring'")


def main() -> int:
    env = os.environ
    base = env.get("RABBITMQ_API", "http://rabbitmq:15672")
    parts = urlsplit(base)
    where = f"{parts.hostname}:{parts.port or 15672}"  # shown instead of the URL, in case it carries credentials
    admin = (env.get("RABBITMQ_USER", ""), env.get("RABBITMQ_PASSWORD", ""))
    monitor = (env.get("RABBITMQ_MONITOR_USER", "monitor"), env.get("RABBITMQ_MONITOR_PASSWORD", ""))
    if not (all(admin) and all(monitor)):
        print("rabbitmq-setup: set RABBITMQ_USER, RABBITMQ_PASSWORD and RABBITMQ_MONITOR_PASSWORD", file=sys.stderr)
        return 1
    if monitor[0] == admin[0]:
        print(f"rabbitmq-setup: the monitor's user must not be the administrator {admin[0]!r}", file=sys.stderr)
        return 1
    try:
        wait_for_api(base, admin)
        set_monitor_user(base, admin, monitor)
    except urllib.error.HTTPError as exc:  # the path and RabbitMQ's reason: no credentials
        reason = " ".join(exc.read().decode(errors="replace").split())[:300]
        print(f"rabbitmq-setup: {where}{urlsplit(exc.url).path}: HTTP {exc.code}: {reason}", file=sys.stderr)
        return 1
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"rabbitmq-setup: {where}: {exc}", file=sys.stderr)
        return 1
    print(f"rabbitmq-setup: user {monitor[0]!r} on {where}: tag monitoring, '^$' '^$' '^$' on vhost {VHOST!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
