"""The Redis ACL the monitor needs to read Celery's keys on a Redis broker, and no more.

Like ``acl`` for RQ: read commands only, ``INFO`` granted alone, ``KEYS`` taken away; ``SCAN``
(in ``@read``) stays, for finding the queues in kombu's binding sets. Celery's queue lists
are named after the queues, so without named queues the user may read every key behind
kombu's ``global_keyprefix`` (``%R~*`` without a prefix); with ``queues`` it may read only
the binding sets, ``unacked`` and those queues' lists. As a ``redis.conf`` or ACL file
line (no prefix, every queue)::

    user celery-monitor on >PASSWORD resetkeys %R~* resetchannels -@all +@read -keys +info +ping
"""

from __future__ import annotations

from collections.abc import Sequence

from .celery_redis import BINDING_PREFIX, UNACKED_KEY, KombuLayout

USER = "celery-monitor"
DEFAULT_LAYOUT = KombuLayout()
COMMANDS = ("resetchannels", "-@all", "+@read", "-keys", "+info", "+ping")


def _glob(text: str) -> str:
    return "".join(f"\\{char}" if char in "*?[]\\" else char for char in text)


def key_rules(layout: KombuLayout = DEFAULT_LAYOUT, queues: Sequence[str] | None = None) -> tuple[str, ...]:
    """``resetkeys`` and the ``%R~`` read patterns for Celery's keys."""
    prefix = _glob(layout.keyprefix)
    if queues is None:
        return ("resetkeys", f"%R~{prefix}*")
    patterns = [f"%R~{prefix}{_glob(BINDING_PREFIX)}*", f"%R~{prefix}{UNACKED_KEY}"]
    for queue in queues:
        patterns += [f"%R~{prefix}{_glob(queue)}", f"%R~{prefix}{_glob(queue + layout.sep)}*"]
    return ("resetkeys", *patterns)


def rules(layout: KombuLayout = DEFAULT_LAYOUT, queues: Sequence[str] | None = None) -> tuple[str, ...]:
    """Everything after ``user <name> on >password``."""
    return (*key_rules(layout, queues), *COMMANDS)


def acl_line(password: str, user: str = USER, layout: KombuLayout = DEFAULT_LAYOUT) -> str:
    """The ``user …`` line for an ACL file or ``redis.conf`` (every queue)."""
    return " ".join(("user", user, "on", f">{password}", *rules(layout)))
