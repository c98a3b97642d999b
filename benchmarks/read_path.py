"""The read path at scale: Kibana's requests on N executions over 30 daily indices.

    python -m benchmarks.read_path [--executions 1000000] [--repeats 5] [--heap 768m] [--index-setting NAME=VALUE]

Starts its own single-node cluster from the integ-test zip (``harness.es_cluster``;
768 MB heap unless ``--heap``), or uses ``ES_URL`` (``ES_USERNAME``/``ES_PASSWORD``; it
deletes ``task-time-*`` there, so it also wants ``TASK_TIME_TESTS_DESTRUCTIVE=1``).
Installs the project's templates with ``python -m pipeline.bootstrap --skip-kibana``,
then:

1. Ingest: the first executions are bulk-created by Logstash's least-privilege writer
   (its role from ``elasticsearch/roles/``) in requests of 125 events, the Logstash
   output's default (``pipeline.batch.size``), from 2 senders (``pipeline.workers``
   defaults to the cores of the Logstash host): executions per second.
2. Load: the rest in large bulk requests (documents made ahead in another process, see
   ``benchmarks.executions``), then a refresh and a force-merge to one segment per index.
3. Storage: bytes per execution from ``_stats/store``, and the largest fields of one day
   from ``_disk_usage``.
4. Reads: the requests Kibana sends for every saved search (Discover: its query and
   sort, 500 rows, exact total hits; and the histogram above them) and every Lens panel,
   over "last 7 days" and "last 30 days", built from the Kibana objects by
   ``harness.kibana_objects``. Each runs ``--repeats`` times (after one unmeasured
   round) with the caches cleared before every run and the request cache off; the
   median is printed beside the median of a plain ``_count`` over the same time range,
   measured in the same rounds, and their ratio.

Targets (judged at 10 M executions over 30 days on a 2-core node): every request < 1 s
median over 30 days and < 0.3 s over 7 days; <= 150 bytes per execution on disk.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

from elasticsearch import Elasticsearch

from benchmarks import executions
from benchmarks.kibana_reads import measure_reads
from harness import kibana_objects
from harness.es_cluster import ElasticsearchCluster

REPO = Path(__file__).resolve().parents[1]
LOGSTASH_BATCH = 125  # pipeline.batch.size default: one bulk request per batch
LOGSTASH_WORKERS = 2  # pipeline.workers defaults to the host's cores
TARGET_BYTES = 150
PRECOMPUTE_MAX = 2_000_000  # about 0.8 GB of bulk bodies per million; beyond, made ahead while loading
WRITER = "task_time_logstash"


def connect(heap: str) -> tuple[Elasticsearch, ElasticsearchCluster | None, dict[str, str]]:
    """A superuser client, the cluster if we started it, and the environment bootstrap needs."""
    if url := os.environ.get("ES_URL"):
        if os.environ.get("TASK_TIME_TESTS_DESTRUCTIVE") != "1":
            raise SystemExit("read_path: ES_URL is changed (task-time-* deleted): set TASK_TIME_TESTS_DESTRUCTIVE=1")
        user, password, cluster = os.environ.get("ES_USERNAME", "elastic"), os.environ.get("ES_PASSWORD", ""), None
    else:
        cluster = ElasticsearchCluster(heap=heap)
        url, user, password = cluster.url, cluster.username, cluster.password
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "KIBANA_", "LOGSTASH_"))}
    env.update(ES_URL=url, ES_USERNAME=user, ES_PASSWORD=password)
    return Elasticsearch(url, basic_auth=(user, password), request_timeout=3600), cluster, env


def bootstrap(env: dict[str, str], **extra: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "pipeline.bootstrap", "--skip-kibana"],
        env={**env, **extra},
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise SystemExit(f"read_path: bootstrap failed: {done.stderr.strip()}")


def try_settings(client: Elasticsearch, settings: dict[str, str]) -> None:
    """Add ``settings`` to the installed mappings template, so every index of this run is created with them."""
    name = "task-time-mappings"
    [installed] = client.cluster.get_component_template(name=name)["component_templates"]
    template = installed["component_template"]["template"]
    template.setdefault("settings", {}).update(settings)
    client.cluster.put_component_template(name=name, template=template)
    print(f"trying, on top of the templates: {', '.join(f'{k}={v}' for k, v in settings.items())}")


def writer_client(client: Elasticsearch, cluster: ElasticsearchCluster | None, env: dict[str, str]) -> Elasticsearch:
    """Logstash's writer: put into our cluster's file realm, or on ``ES_URL`` created by bootstrap if missing."""
    password = os.environ.get("LOGSTASH_WRITER_PASSWORD", "read-path-writer")
    url = client.transport.node_pool.get().base_url
    writer = Elasticsearch(url, basic_auth=(WRITER, password), request_timeout=600)
    if cluster is not None:
        role = json.loads((REPO / "elasticsearch" / "roles" / "task_time_logstash_writer.json").read_text())
        cluster.add_file_realm_user(WRITER, password, {"task_time_logstash_writer": role})
    elif writer.options(ignore_status=401).security.authenticate().meta.status == 401:
        bootstrap(env, LOGSTASH_WRITER_PASSWORD=password)
    writer.security.authenticate()
    return writer


def chunks(count: int, start: float, end: float, size: int) -> Iterator[tuple[bytes, int]]:
    """Bulk bodies for ``count`` executions in time order, made in another process ahead of use."""
    parts = max(1, -(-count // size))
    span = (end - start) / parts
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1)) as pool:
        pending = []
        for part in range(parts):
            n = min(size, count - part * size)
            pending.append(pool.submit(executions.chunk, part, start + part * span, start + (part + 1) * span, n))
            if len(pending) > 8:
                yield pending.pop(0).result()
        for future in pending:
            yield future.result()


def send(client: Elasticsearch, bodies: Iterator[bytes], senders: int) -> float:
    """Bulk-create every body with ``senders`` concurrent requests; the seconds it took."""

    def one(body: bytes) -> None:
        response = client.bulk(operations=body, filter_path="errors,items.*.error")
        if response.get("errors"):
            raise RuntimeError(f"bulk refused: {response['items'][:2]}")

    started = time.perf_counter()
    with ThreadPoolExecutor(senders) as threads:
        for _ in threads.map(one, bodies):
            pass
    return time.perf_counter() - started


def batches(body: bytes, events: int) -> list[bytes]:
    """A bulk body cut into bodies of ``events`` actions (two lines each)."""
    lines = body.splitlines(keepends=True)
    return [b"".join(lines[i : i + 2 * events]) for i in range(0, len(lines), 2 * events)]


def heap_mb(client: Elasticsearch) -> tuple[float, float]:
    [node] = client.nodes.stats(metric="jvm")["nodes"].values()
    memory = node["jvm"]["mem"]
    return memory["heap_used_in_bytes"] / 2**20, memory["heap_max_in_bytes"] / 2**20


def _bytes(field: dict, part: str) -> int:
    """One part of a field's ``_disk_usage``: a plain ``<part>_in_bytes`` or an object with ``total_in_bytes``."""
    if f"{part}_in_bytes" in field:
        return field[f"{part}_in_bytes"]
    value = field.get(part)
    return value.get("total_in_bytes", 0) if isinstance(value, dict) else 0


def storage(client: Elasticsearch, index: str, total: int) -> float:
    """Bytes per execution on disk after a force-merge to one segment; prints the largest fields of one day."""
    client.indices.forcemerge(index=index, max_num_segments=1, wait_for_completion=True)
    store = client.indices.stats(index=index, metric="store")["_all"]["primaries"]["store"]["size_in_bytes"]
    days = client.cat.indices(index=f"{executions.PARSED_INDEX}-2*", format="json", h="index,docs.count")
    day = max(days, key=lambda row: int(row["docs.count"]))
    with warnings.catch_warnings():  # _disk_usage is a technical preview; its numbers are what we need
        warnings.simplefilter("ignore")
        usage = client.indices.disk_usage(index=day["index"], run_expensive_tasks=True)[day["index"]]
    docs = int(day["docs.count"])
    fields = sorted(usage["fields"].items(), key=lambda item: -item[1]["total_in_bytes"])
    print(f"largest fields of {day['index']} ({docs} executions), bytes per execution:")
    for name, field in fields[:10]:
        parts = ("inverted_index", "stored_fields", "doc_values", "points", "norms")
        sizes = {p: _bytes(field, p) for p in parts}
        detail = ", ".join(f"{p} {size / docs:.1f}" for p, size in sizes.items() if size)
        print(f"  {name:<20} {field['total_in_bytes'] / docs:7.1f}   ({detail})")
    return store / total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--executions", type=int, default=1_000_000, help="executions to load (default 1,000,000)")
    parser.add_argument("--days", type=int, default=30, help="days they span, one index per day (default 30)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each request (default 5)")
    parser.add_argument("--heap", default="768m", help="heap of the cluster started here (default 768m)")
    parser.add_argument("--ingest", type=int, default=100_000, help="executions sent as the writer (default 100,000)")
    parser.add_argument("--bulk", type=int, default=5000, help="executions per bulk request when loading")
    parser.add_argument(
        "--index-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an index setting to try on top of the templates' (e.g. index.codec=best_compression); repeatable",
    )
    args = parser.parse_args(argv)
    if any("=" not in setting for setting in args.index_setting):
        parser.error("--index-setting takes NAME=VALUE")
    trial = dict(setting.split("=", 1) for setting in args.index_setting)

    client, cluster, env = connect(args.heap)
    try:
        index = kibana_objects.objects()[("index-pattern", "task-time")]["attributes"]["title"]
        names = list(client.indices.get(index=index, expand_wildcards="all"))
        if names:
            client.indices.delete(index=",".join(names))
        bootstrap(env)
        if trial:
            try_settings(client, trial)
        writer = writer_client(client, cluster, env)
        now = time.time()
        # Whole UTC days before today plus today so far: one index per day.
        start = (now // 86400 - (args.days - 1)) * 86400
        bodies = chunks(args.executions, start, now, args.bulk)
        if args.executions <= PRECOMPUTE_MAX:  # all made before any is sent: the load times Elasticsearch alone
            made = time.perf_counter()
            bodies = iter(list(bodies))
            print(f"documents made in {time.perf_counter() - made:.1f} s, before loading")
        unparsed, ingested, batch = 0, 0, []
        for body, bad in bodies:
            unparsed += bad
            batch += batches(body, LOGSTASH_BATCH)
            ingested += body.count(b"\n") // 2
            if ingested >= min(args.ingest, args.executions):
                break
        seconds = send(writer, iter(batch), LOGSTASH_WORKERS)
        print(
            f"ingest as {WRITER}, {LOGSTASH_BATCH} per bulk, {LOGSTASH_WORKERS} senders: "
            f"{ingested / seconds:,.0f} executions/s ({ingested} in {seconds:.1f} s)"
        )
        loaded = 0

        def rest() -> Iterator[bytes]:
            nonlocal unparsed, loaded
            for body, bad in bodies:
                unparsed += bad
                loaded += body.count(b"\n") // 2
                yield body

        for name in executions.index_names(start, now):
            client.options(ignore_status=400).indices.create(index=name)
        refresh = client.indices.get_settings(index=index, name="index.refresh_interval", flat_settings=True)
        client.indices.put_settings(index=index, settings={"index.refresh_interval": "-1"})
        seconds = send(client, rest(), 2)
        for name, settings in refresh.items():  # back to the template's value
            client.indices.put_settings(
                index=name, settings={"index.refresh_interval": settings["settings"].get("index.refresh_interval")}
            )
        client.indices.refresh(index=index)
        total = client.count(index=index)["count"]
        assert total == args.executions, (total, args.executions)
        print(f"loaded {loaded} more in {seconds:.1f} s ({loaded / seconds:,.0f}/s, {args.bulk} per bulk)")
        print(f"executions: {total} over {args.days} days, {unparsed} of them unparsed lines")
        used, most = heap_mb(client)
        print(f"heap: {used:.0f} MB used of {most:.0f} MB after loading")
        per_execution = storage(client, index, total)
        modules = {m["name"] for node in client.nodes.info(metric="plugins")["nodes"].values() for m in node["modules"]}
        # match_only_text would index message without positions yet keep phrase queries; the template
        # cannot use it where its module is missing (the integ-test zip), so it is only reported.
        print(f"match_only_text (mapper-extras module): {'available' if 'mapper-extras' in modules else 'missing'}")
        verdict = "met" if per_execution <= TARGET_BYTES else "missed"
        print(f"bytes per execution on disk: {per_execution:.1f}   target <= {TARGET_BYTES}   {verdict}")
        reads_ok = measure_reads(client, index, now, args.repeats)
        used, most = heap_mb(client)
        print(f"\nheap: {used:.0f} MB used of {most:.0f} MB after the reads")
        met = reads_ok and per_execution <= TARGET_BYTES
        scale = "" if args.executions >= 10_000_000 else f" (targets are set for 10,000,000; this run has {total})"
        print(("all targets met" if met else "a target was missed") + scale)
    finally:
        if cluster is not None:
            cluster.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
