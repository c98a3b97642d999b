"""The queue monitor's read-only ACL user, and a Redis client that counts what it sends (tests and benchmark)."""

from __future__ import annotations

from typing import Any

from redis import ConnectionPool, Redis
from redis.connection import Connection

from pipeline.monitor import acl

PASSWORD = "monitor-pass-1"


def grant_monitor(admin: Redis, password: str = PASSWORD, rules: tuple[str, ...] = acl.RULES) -> None:
    """Create (or reset) the monitor's ACL user with ``rules``."""
    admin.execute_command("ACL", "SETUSER", acl.USER, "reset", "on", f">{password}", *rules)


def monitor_url(server_url: str, password: str = PASSWORD, user: str = acl.USER) -> str:
    """``server_url`` with the monitor user's credentials."""
    return server_url.replace("redis://", f"redis://{user}:{password}@", 1)


class CountingConnection(Connection):
    """A redis-py connection that counts what it sends: round trips (writes to the socket) and commands."""

    round_trips = 0
    commands = 0

    @classmethod
    def reset(cls) -> None:
        cls.round_trips = cls.commands = 0

    def pack_commands(self, commands: Any) -> Any:
        commands = list(commands)
        CountingConnection.commands += len(commands) - 1  # send_packed_command counts one
        return super().pack_commands(commands)

    def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        CountingConnection.round_trips += 1
        CountingConnection.commands += 1
        super().send_packed_command(command, check_health)


def counting_client(like: Redis) -> Redis:
    """A client with ``like``'s address and credentials whose traffic ``CountingConnection`` counts.

    It connects (and so authenticates) before returning: only what follows is counted.
    """
    kwargs = dict(like.connection_pool.connection_kwargs)
    client = Redis(connection_pool=ConnectionPool(connection_class=CountingConnection, **kwargs))
    client.ping()
    CountingConnection.reset()
    return client
