"""A real RabbitMQ node (Debian's ``rabbitmq-server``) as a process of the tests, on free ports.

Self-contained: its own node name, AMQP, distribution, management and epmd ports, its own
mnesia, log and cookie folder; ``stop()`` stops the node and its epmd by pid. The
management plugin is enabled unless ``management=False``; ``memory_watermark`` sets
``vm_memory_high_watermark.absolute`` (bytes).

    python -m harness.rabbitmq     # start one by hand, print its URLs, stop on Enter
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from harness.redis_server import free_port

BIN = Path("/usr/lib/rabbitmq/bin")
ADMIN = ("admin", "admin-pass-1")


class RabbitMQNode:
    """Starts a node and waits for it (``rabbitmqctl await_startup``); an admin user ``ADMIN`` is created."""

    def __init__(self, management: bool = True, memory_watermark: int | None = None, start: bool = True) -> None:
        if not (BIN / "rabbitmq-server").exists():
            raise RuntimeError("rabbitmq-server is not installed (Debian: apt-get install rabbitmq-server)")
        self.folder = Path(tempfile.mkdtemp(prefix="rq-task-time-rabbitmq-"))
        self.name = f"tt{os.getpid()}x{free_port()}@localhost"
        self.amqp_port, self.dist_port, self.api_port, self.epmd_port = (free_port() for _ in range(4))
        self.management = management
        config = [
            f"listeners.tcp.default = {self.amqp_port}",
            "loopback_users = none",
            "log.console = false",
            "log.file.level = warning",
            # Disk alarms would block publishers on a nearly full test machine; the tests watch memory.
            "disk_free_limit.absolute = 1",
            # Queue and node figures in the management API every 0.5 s instead of 5 s.
            "collect_statistics_interval = 500",
            # Keep messages in memory (the seed's scenario) instead of paging them out from 50 % of
            # the watermark; the schema refuses 1.0 and above.
            "vm_memory_high_watermark_paging_ratio = 0.99",
        ]
        if management:
            config.append(f"management.tcp.port = {self.api_port}")
            config.append("management.tcp.ip = 127.0.0.1")
        if memory_watermark is not None:
            config.append(f"vm_memory_high_watermark.absolute = {memory_watermark}")
        (self.folder / "rabbitmq.conf").write_text("\n".join(config) + "\n")
        plugins = "[rabbitmq_management]." if management else "[]."
        (self.folder / "enabled_plugins").write_text(plugins + "\n")
        (self.folder / "home").mkdir()
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))},
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.amqp_port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.folder / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.folder / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.folder / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.folder / "rabbitmq"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "HOME": str(self.folder / "home"),
            "ERL_CRASH_DUMP": str(self.folder / "erl_crash.dump"),  # not in the caller's folder
        }
        self.process: subprocess.Popen[bytes] | None = None
        if start:
            self.start()

    # ------------------------------------------------------------------ life cycle

    def start(self, timeout: float = 120) -> None:
        """Start the node and wait until it runs (and its API answers, with management)."""
        with (self.folder / "startup.out").open("ab") as out:
            self.process = subprocess.Popen(
                [str(BIN / "rabbitmq-server")],
                env=self.env,
                cwd=self.folder,  # where Erlang drops its crash dumps (MnesiaCore.*, erl_crash.dump)
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while True:  # await_startup fails at once until the node has registered with epmd
            done = self.ctl("await_startup", "--timeout", "30", check=False, timeout=60)
            if done.returncode == 0:
                break
            if self.process.poll() is not None or time.monotonic() > deadline:
                files = [self.folder / "startup.out", *(self.folder / "log").glob("*.log")]
                logs = " ".join(" ".join(p.read_text(errors="replace")[-400:].split()) for p in files if p.exists())
                self.stop()
                raise RuntimeError(f"RabbitMQ node {self.name} did not start: {logs or done.stderr.strip()[-400:]}")
            time.sleep(1)
        self.ctl("add_user", *ADMIN, check=False)
        self.ctl("set_user_tags", ADMIN[0], "administrator")
        self.ctl("set_permissions", "-p", "/", ADMIN[0], ".*", ".*", ".*")
        if self.management:
            self.wait_api()

    def stop_node(self) -> None:
        """Stop the node (not epmd): ``rabbitmqctl stop``, then the process by pid."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.ctl("stop", check=False, timeout=60)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.process = None

    def stop(self) -> None:
        """Stop the node and its epmd, and remove its folder."""
        try:
            self.stop_node()
        finally:
            subprocess.run(["epmd", "-kill"], env=self.env, capture_output=True, timeout=10, check=False)
            shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------------ access

    def set_watermark(self, absolute: int | None) -> None:
        """``vm_memory_high_watermark.absolute`` at run time (None: back to the 0.4 default)."""
        if absolute is None:
            self.ctl("set_vm_memory_high_watermark", "0.4")
        else:
            self.ctl("set_vm_memory_high_watermark", "absolute", str(absolute))

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``rabbitmqctl -n <node> …`` with the node's cookie."""
        done = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
        return done

    def plugins(self, *args: str) -> None:
        """``rabbitmq-plugins -n <node> …`` on the running node (e.g. ``disable rabbitmq_management``)."""
        done = subprocess.run(
            [str(BIN / "rabbitmq-plugins"), "-n", self.name, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmq-plugins {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")

    def wait_api(self, timeout: float = 60) -> None:
        """Wait until the management API answers."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.api("GET", "/api/overview")
                return
            except (OSError, urllib.error.URLError):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the management API of {self.name} did not answer") from None
                time.sleep(0.3)

    @property
    def url(self) -> str:
        """The AMQP URL of the admin user on the default vhost: a Celery app's broker."""
        return self.amqp_url()

    @property
    def management_url(self) -> str:
        """The management API's base URL, without credentials."""
        return f"http://127.0.0.1:{self.api_port}"

    def purge(self) -> None:
        """Empty every queue, so each test starts empty (kept: producers remember what they declared)."""
        listed = self.ctl("list_queues", "-q", "--no-table-headers", "name").stdout
        for name in filter(None, (line.strip() for line in listed.splitlines())):
            self.ctl("purge_queue", name)

    def amqp_url(self, user: tuple[str, str] = ADMIN, vhost: str = "/") -> str:
        return f"amqp://{user[0]}:{user[1]}@127.0.0.1:{self.amqp_port}/{quote(vhost, safe='')}"

    def api_url(self, user: tuple[str, str] = ADMIN) -> str:
        return f"http://{user[0]}:{user[1]}@127.0.0.1:{self.api_port}"

    def api(self, method: str, path: str, body: Any = None, user: tuple[str, str] = ADMIN) -> Any:
        """One management API request as ``user``; the JSON answer (None when empty)."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", data=data, method=method)
        request.add_header("Authorization", "Basic " + base64.b64encode(f"{user[0]}:{user[1]}".encode()).decode())
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def add_monitoring_user(self, user: tuple[str, str], vhosts: tuple[str, ...] = ("/",)) -> None:
        """The monitor's user: the ``monitoring`` tag, and ``'^$' '^$' '^$'`` on each vhost."""
        self.ctl("add_user", *user, check=False)
        self.ctl("change_password", *user)
        self.ctl("set_user_tags", user[0], "monitoring")
        for vhost in vhosts:
            self.ctl("set_permissions", "-p", vhost, user[0], "^$", "^$", "^$")


if __name__ == "__main__":
    node = RabbitMQNode()
    print(node.amqp_url(), node.api_url())
    try:
        input("Enter stops the node\n")
    finally:
        node.stop()
