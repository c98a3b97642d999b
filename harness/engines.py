"""Logstash's regex engine and date library (and Elasticsearch's ILM policy parser) in one long-lived JVM.

    python -m harness.engines build     # fetch joda-time, compile the helper, print its classpath

Logstash cannot run here, but the engines its grok and date filters use can: Joni (the
regex engine, through Elasticsearch's grok library, which carries the same pattern bank)
and Joda-Time. The same helper reads ILM policies with x-pack-core's parser, as a node with
the ILM module would. ``harness/oracle/`` holds the Java helper; it is compiled on first use
(and again whenever its source or classpath changes) with the JDK the test cluster uses.
Joni, jcodings and the grok library come from the Elasticsearch test distribution's
``lib/``; joda-time 2.14.0 (the version Logstash 9.5's JRuby bundles) from Maven Central,
checksum pinned.
"""

from __future__ import annotations

import atexit
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import urllib.request
from pathlib import Path
from typing import Any

from harness.es_cluster import cache_dir, fetch, find_java

MAIN = "GrokDateOracle"
SOURCE = Path(__file__).resolve().parent / "oracle"
JODA_URL = "https://repo1.maven.org/maven2/joda-time/joda-time/2.14.0/joda-time-2.14.0.jar"
JODA_SHA256 = "1e2da6f9eb65f20a25d9a3186831ed2b3fb14f7a48e1ef8206135ee58cb143d3"
# From the Elasticsearch distribution: its grok library, Joni and jcodings (as Logstash's), x-content and
# x-pack-core for the ILM policy parser.
ES_JARS = (
    "lib/elasticsearch-grok-*.jar",
    "lib/joni-*.jar",
    "lib/jcodings-*.jar",
    "lib/elasticsearch-core-*.jar",
    "lib/elasticsearch-[0-9]*.jar",
    "lib/elasticsearch-x-content-*.jar",
    "lib/lucene-core-*.jar",
    "lib/lucene-suggest-*.jar",
    "lib/log4j-api-*.jar",
    "modules/x-pack-core/x-pack-core-*.jar",
)


def fetch_joda() -> Path:
    """joda-time's jar in the cache folder, downloaded once and checked against the pinned SHA-256."""
    jar = cache_dir() / Path(JODA_URL).name
    if not jar.exists():
        cache_dir().mkdir(parents=True, exist_ok=True)
        partial = jar.with_suffix(".part")
        with urllib.request.urlopen(JODA_URL, timeout=120) as response, partial.open("wb") as out:
            shutil.copyfileobj(response, out)
        partial.rename(jar)
    digest = hashlib.sha256(jar.read_bytes()).hexdigest()
    if digest != JODA_SHA256:
        jar.unlink()
        raise RuntimeError(f"{jar.name}: SHA-256 {digest} does not match the pinned {JODA_SHA256}")
    return jar


def classpath() -> list[Path]:
    home = fetch()
    jars = []
    for pattern in ES_JARS:
        found = sorted(home.glob(pattern))
        if not found:
            raise RuntimeError(f"the Elasticsearch distribution at {home} has no {pattern}")
        jars += [jar for jar in found if jar not in jars]
    return [*jars, fetch_joda()]


def build() -> list[Path]:
    """Compile the helper unless an up-to-date build exists; return the full classpath (classes first)."""
    jars = classpath()
    sources = sorted(SOURCE.glob("*.java"))
    key = hashlib.sha256()
    for path in [*sources, *jars]:
        key.update(path.name.encode() + (path.read_bytes() if path.suffix == ".java" else b""))
    classes = cache_dir() / f"oracle-{key.hexdigest()[:16]}"
    if not classes.is_dir():
        staging = Path(tempfile.mkdtemp(dir=cache_dir(), prefix="oracle-build-"))
        javac = find_java() / "bin" / "javac"
        done = subprocess.run(
            [str(javac), "-d", str(staging), "-cp", ":".join(map(str, jars)), *map(str, sources)],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            shutil.rmtree(staging)
            raise RuntimeError(f"javac failed:\n{done.stderr}")
        staging.chmod(0o755)
        try:
            staging.rename(classes)
        except OSError:  # another session built it meanwhile
            shutil.rmtree(staging)
    return [classes, *jars]


class Engines:
    """The running helper. ``call`` sends a batch of operations and returns their results in order."""

    def __init__(self) -> None:
        java = find_java() / "bin" / "java"
        # The .conf's date filter sets no locale, so Logstash uses the JVM default: en-US as in its image.
        self.process = subprocess.Popen(
            [
                str(java),
                "-Duser.language=en",
                "-Duser.country=US",
                "-Dlog4j2.statusLoggerLevel=OFF",
                "-cp",
                ":".join(map(str, build())),
                MAIN,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        self.lock = threading.Lock()
        self._groks: dict[tuple[str, str], int] = {}
        self._dates: dict[tuple[str, ...], int] = {}

    def call(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not operations:
            return []
        with self.lock:
            assert self.process.stdin and self.process.stdout
            self.process.stdin.write(json.dumps(operations) + "\n")
            self.process.stdin.flush()
            answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError(f"the engine helper exited ({self.process.poll()})")
        return json.loads(answer)

    def _compiled(self, operation: dict[str, Any]) -> int:
        [result] = self.call([operation])
        if "error" in result:
            raise ValueError(result["error"])
        return result["id"]

    def grok(self, pattern: str, definitions: dict[str, str]) -> int:
        """The id of ``pattern`` compiled as Logstash's grok compiles it (compiled once per session)."""
        key = (pattern, json.dumps(definitions, sort_keys=True))
        if key not in self._groks:
            self._groks[key] = self._compiled({"op": "grok", "pattern": pattern, "definitions": definitions})
        return self._groks[key]

    def match(self, grok: int, texts: list[str]) -> list[dict[str, str] | None]:
        """Per text: the captures as ``{"field" or "field:type": string}``, or None when it does not match."""
        return [r["captures"] for r in self._checked([{"op": "match", "grok": grok, "text": t} for t in texts])]

    def date(self, formats: list[str], timezone: str, locale: str | None = None) -> int:
        key = (*formats, timezone, str(locale))
        if key not in self._dates:
            operation = {"op": "date", "formats": formats, "timezone": timezone, "locale": locale}
            self._dates[key] = self._compiled(operation)
        return self._dates[key]

    def parse(self, date: int, texts: list[str]) -> list[int | str]:
        """Per text: epoch milliseconds, or Joda's reason for refusing it."""
        results = self.call([{"op": "parse", "date": date, "text": t} for t in texts])
        return [r["millis"] if "millis" in r else r["error"] for r in results]

    def ilm_policy_error(self, name: str, body: str) -> str | None:
        """Why Elasticsearch's ``PUT _ilm/policy/<name>`` would refuse ``body``, or None when it accepts it."""
        [result] = self.call([{"op": "ilm", "name": name, "json": body}])
        return result.get("error")

    def zones(self) -> list[str]:
        """Every zone id Joda-Time knows."""
        [result] = self.call([{"op": "zones"}])
        return result["zones"]

    def _checked(self, operations: list[dict[str, Any]]) -> list[dict[str, Any]]:
        results = self.call(operations)
        for result in results:
            if "error" in result:
                raise RuntimeError(f"engine helper: {result['error']}")
        return results

    def close(self) -> None:
        """End the helper (its input closed, it exits) and close both pipes."""
        if self.process.poll() is None:
            assert self.process.stdin
            self.process.stdin.close()
            self.process.wait(30)
        if self.process.stdout:
            self.process.stdout.close()


_running: Engines | None = None


def engines() -> Engines:
    """The session's helper, started on first use and stopped at exit."""
    global _running
    if _running is None or _running.process.poll() is not None:
        _running = Engines()
        atexit.register(_running.close)
    return _running


def main(argv: list[str]) -> int:
    if argv == ["build"]:
        print(":".join(map(str, build())))
        return 0
    print("usage: python -m harness.engines build", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
