"""The Redis ACL the monitor needs, and no more.

``INFO`` is in ``@slow @dangerous``, not ``@read``: it is granted alone. ``KEYS`` is in
``@read`` and blocks Redis on a big keyspace: it is taken away. ``%R~rq:*`` (Redis 7+)
allows reading RQ's keys and nothing else; no channels. As a ``redis.conf`` or ACL file
line::

    user monitor on >PASSWORD resetkeys %R~rq:* resetchannels -@all +@read -keys +info +ping
"""

from __future__ import annotations

USER = "monitor"
# Everything after "user <name> on >password"; docker-compose.yml and the tests use these rules.
RULES = ("resetkeys", "%R~rq:*", "resetchannels", "-@all", "+@read", "-keys", "+info", "+ping")


def acl_line(password: str, user: str = USER) -> str:
    """The ``user …`` line for an ACL file or ``redis.conf``."""
    return " ".join(("user", user, "on", f">{password}", *RULES))
