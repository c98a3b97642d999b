"""A real RabbitMQ node, started as a process of its own, for the tests and the benchmarks.

Debian's ``rabbitmq-server`` package (``apt-get install rabbitmq-server``) provides the
node; its ``/usr/sbin`` wrappers only run as root or ``rabbitmq``, so the scripts in
``/usr/lib/rabbitmq/bin`` are called directly. Every port is free and its own (AMQP,
management, distribution, epmd), and so are the mnesia and log folders and ``HOME`` (the
Erlang cookie); ``rabbitmq_management`` is enabled through an enabled_plugins file.
``stop()`` stops the node and its epmd by pid. Nothing here skips: a node that cannot
start raises.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port() -> int:
    """A TCP port free on loopback right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


BIN = Path(os.environ.get("RABBITMQ_BIN", "/usr/lib/rabbitmq/bin"))
START_TIMEOUT = 120.0


class RabbitMQNode:
    """A private RabbitMQ node on loopback: ``url`` (AMQP, user guest) and ``management_url``."""

    def __init__(self) -> None:
        server = BIN / "rabbitmq-server"
        if not server.exists():
            raise RuntimeError(f"{server} not found (Debian: apt-get install rabbitmq-server)")
        self.folder = Path(tempfile.mkdtemp(prefix="rq-task-time-rabbitmq-"))
        self.port, self.management_port, self.dist_port, self.epmd_port = (free_port() for _ in range(4))
        self.name = f"rq_task_time_{self.port}@localhost"
        (self.folder / "home").mkdir()
        (self.folder / "enabled_plugins").write_text("[rabbitmq_management].\n")
        (self.folder / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\n"
            f"management.tcp.port = {self.management_port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            "loopback_users.guest = true\n"
        )
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "HOME": str(self.folder / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),  # without .conf, as the scripts want
            "RABBITMQ_CONF_ENV_FILE": str(self.folder / "rabbitmq-env.conf"),
        }
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}//"
        self.management_url = f"http://127.0.0.1:{self.management_port}"
        self.process = subprocess.Popen(
            [str(server)],
            env=self.env,
            cwd=self.folder,
            stdout=(self.folder / "server.out").open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._await_startup()
        except Exception as exc:
            output = (self.folder / "server.out").read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"RabbitMQ did not start on port {self.port}: {exc}\n{output}") from None

    def _await_startup(self) -> None:
        """``rabbitmqctl await_startup`` once the node has registered with its epmd (before that it fails at once)."""
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited with {self.process.returncode}")
            try:
                self.ctl("await_startup", "--timeout", "30", timeout=60)
                return
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run ``rabbitmqctl`` against this node; raise if it fails."""
        done = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env,
            cwd=self.folder,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done.stdout

    def purge(self) -> None:
        """Empty every queue, so each test starts empty (kept: producers remember what they declared)."""
        for line in self.ctl("list_queues", "-q", "--no-table-headers", "name").splitlines():
            if line.strip():
                self.ctl("purge_queue", line.strip())

    def _epmd_pids(self) -> list[int]:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environ = (entry / "environ").read_bytes().split(b"\0")
                command = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"epmd" in command and f"ERL_EPMD_PORT={self.epmd_port}".encode() in environ:
                found.append(int(entry.name))
        return found

    def stop(self) -> None:
        """Stop the node (its whole process group) and the epmd it started, by pid."""
        epmd = self._epmd_pids()
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self.ctl("stop", timeout=60)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        for pid in epmd + self._epmd_pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._epmd_pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        shutil.rmtree(self.folder, ignore_errors=True)


if __name__ == "__main__":
    node = RabbitMQNode()
    print(node.url, node.management_url, flush=True)
    node.stop()
