"""Time the requests Kibana sends for the saved searches and Lens panels, beside a plain ``_count``.

The requests are built from the Kibana objects by ``harness.kibana_objects``, as
Kibana would send them for a time range ending now: Discover's rows and histogram for a
saved search, the aggregation of a Lens panel.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from elasticsearch import Elasticsearch

from harness import kibana_objects

TARGET_SECONDS = {7: 0.3, 30: 1.0}


def timed(run: Callable[[], dict]) -> tuple[float, dict]:
    started = time.perf_counter()
    result = run()
    return time.perf_counter() - started, result


def kibana_requests(days: int, now: float) -> list[tuple[str, dict]]:
    """(title, body) of every saved search and Lens panel on task times for the last ``days`` days before ``now``."""
    found = kibana_objects.objects()
    field = found[("index-pattern", "task-time")]["attributes"]["timeFieldName"]
    saved = kibana_objects.reading("task-time", found)
    start, end = (time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t)) for t in (now - days * 86400, now))
    requests = []
    for (type_, _), item in sorted(saved.items()):
        title = item["attributes"]["title"]
        if type_ == "search":
            requests.append((f"{title} (search)", kibana_objects.discover_request(item, field, start, end)))
            if not item["attributes"].get("hideChart"):
                chart = kibana_objects.discover_chart_request(item, field, start, end, days * 86400)
                requests.append((f"{title} (search chart)", chart))
        elif type_ == "lens":
            requests.append((f"{title} (lens)", kibana_objects.lens_request(item, field, start, end, days * 86400)))
    baseline = {"query": kibana_objects.time_filter(field, start, end)}
    return [("_count", baseline), *requests]


def measure_reads(client: Elasticsearch, index: str, now: float, repeats: int) -> bool:
    """Median seconds of each Kibana request and of ``_count``, per time range; True when all meet the target."""
    ok = True
    for days in (7, 30):
        requests = kibana_requests(days, now)
        samples: dict[str, list[float]] = {title: [] for title, _ in requests}
        rows: dict[str, str] = {}
        for round_ in range(repeats + 1):  # round 0 warms up the JVM and the page cache, unmeasured
            for title, body in requests:
                client.indices.clear_cache(index=index)
                if title == "_count":
                    seconds, _ = timed(lambda b=body: client.count(index=index, **b))
                else:
                    seconds, response = timed(lambda b=body: client.search(index=index, request_cache=False, **b))
                    hits, aggs = response["hits"]["total"]["value"], response.get("aggregations", {})
                    buckets = f", {sum(len(a['buckets']) for a in aggs.values())} buckets" if aggs else ""
                    rows[title] = f"{hits} hits{buckets}"
                if round_:
                    samples[title].append(seconds)
        count = statistics.median(samples["_count"])
        target = TARGET_SECONDS[days]
        print(f"\nlast {days} days: median of {repeats} runs, caches cleared   target < {target} s")
        print(f"  {'_count':<52} {count:7.3f} s")
        for title, times in samples.items():
            if title == "_count":
                continue
            median = statistics.median(times)
            verdict = "met" if median < target else "missed"
            ok &= median < target
            print(f"  {title:<52} {median:7.3f} s   ratio {median / count:6.1f} to _count   {verdict}  ({rows[title]})")
    return ok
