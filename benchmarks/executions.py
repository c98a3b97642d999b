"""Task executions as Logstash hands them to Elasticsearch, made up in bulk for benchmarks.

Each execution is a real line written by ``pipeline.lines.task`` and the document the Logstash
pipeline makes of it (``tests/golden/task-time.expected.json`` shows the shape): its
parsed fields, ``@timestamp`` from the line's time, Logstash's own fields, and the MD5 of
the line as document id. About one line in a thousand does not parse and goes to
``task-time-unparsed-*`` as ``message`` with its tags, as the pipeline routes it.

The mix is what a busy RQ deployment looks like: about fifty task names with Zipf-like
frequencies, log-normal durations per task with a Pareto tail, a few queues and workers,
mostly ``finished``. Everything is drawn from a seeded generator: a chunk is the same
bytes every time.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import json
import random
import time
import uuid

from pipeline.lines.clock import TIME, LineClock, format_line
from pipeline.lines.task import FAILED, FIELDS, FINISHED, KILLED, TIMEOUT, TaskRun, format_fields

PARSED_INDEX = "task-time"
UNPARSED_INDEX = "task-time-unparsed"
UNPARSED_SHARE = 0.001
# Logstash's own fields, as in the golden documents.
LOGSTASH_FIELDS = {
    "@version": "1",
    "event": {},
    "host": {"name": "logstash"},
    "log": {"file": {"path": "/var/log/rq-task-time/task-time.log"}},
}
UNPARSED_TAGS = ["_grokparsefailure", "task_time_unparsed"]
# Every field the grok captures after the time, named as pipeline.lines.task names them.
PARSED_FIELDS = tuple(field.name for field in FIELDS if field is not TIME)
_TIME_AT = len(f"{TIME.label}: ")

_APPS = ("billing", "orders", "accounts", "search", "notifications", "reports", "media", "integrations")
_ACTIONS = (
    "send_order_confirmation_email", "generate_invoice_pdf", "sync_customer_to_crm", "resize_product_images",
    "rebuild_search_index_partition", "charge_subscription_renewal", "export_monthly_report_csv",
    "refresh_exchange_rates", "deliver_webhook_event", "cleanup_expired_sessions", "import_supplier_catalog",
    "recalculate_loyalty_points", "send_push_notification_batch", "transcode_uploaded_video",
    "reconcile_payment_provider_ledger", "warm_product_page_cache", "compute_daily_sales_aggregates",
)  # fmt: skip
_STATUSES = ((FINISHED, 0.975), (FAILED, 0.019), (TIMEOUT, 0.005), (KILLED, 0.001))
_QUEUES = ("high", "default", "low", "reports")
# Lines the grok refuses, each unique as real ones are (the same line twice is one document).
_BROKEN = (
    "Time: {time} Task: {task} Task-time: nan Job: {job}",
    "Time: {time} Task: {task} Task-time: 1.000000 Queue: default Status: running Job: {job}",
    "{time} ERROR rq.worker: {job}: exception raised while executing ({task})",
)


def task_mix(seed: int = 7, tasks: int = 50) -> list[tuple[str, str, float, float, float]]:
    """``tasks`` tasks as (name, queue, weight, median seconds, log-normal sigma)."""
    rng = random.Random(seed)
    names = [f"acme.{app}.tasks.{action}" for app, action in itertools.product(_APPS, _ACTIONS)]
    rng.shuffle(names)
    mix = []
    for rank, name in enumerate(names[:tasks], start=1):
        median = 10 ** rng.uniform(-2.5, 1.5)  # 3 ms to 30 s
        mix.append((name, rng.choice(_QUEUES), 1 / rank**1.1, median, rng.uniform(0.4, 1.4)))
    return mix


def workers(count: int = 12) -> list[str]:
    """Worker names as ``rq-task-time-worker`` gives them: ``<host>.<pid>``."""
    rng = random.Random(11)
    return [f"worker-{n}.prod.{rng.randrange(1000, 65000)}" for n in range(1, count + 1)]


def _day(iso: str) -> str:
    return iso[:10].replace("-", ".")


def chunk(seed: int, start: float, end: float, count: int) -> tuple[bytes, int]:
    """Bulk ``create`` actions for ``count`` executions ending between ``start`` and ``end`` (epoch s).

    Returns the ndjson body and how many of its lines did not parse.
    """
    rng = random.Random(seed)
    mix = task_mix()
    cumulative = list(itertools.accumulate(weight for _, _, weight, _, _ in mix))
    status_cumulative = list(itertools.accumulate(share for _, share in _STATUSES))
    names = workers()
    clock = LineClock()
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    out: list[str] = []
    unparsed = 0
    for stamp in sorted(rng.uniform(start, end) for _ in range(count)):
        name, queue, _, median, sigma = mix[bisect.bisect(cumulative, rng.random() * cumulative[-1])]
        seconds = rng.lognormvariate(0, sigma) * median
        if rng.random() < 0.01:
            seconds *= rng.paretovariate(1.5)  # the heavy tail: a slow dependency, a huge input
        status = _STATUSES[min(bisect.bisect(status_cumulative, rng.random()), len(_STATUSES) - 1)][0]
        execution = TaskRun(
            task_name=name,
            task_time=seconds,
            queue=queue,
            status=status,
            wait_time=rng.expovariate(1 / (0.05 if queue == "high" else 2.0)),
            job_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            worker=names[rng.randrange(len(names))],
        )
        line = format_line(stamp, format_fields(execution), clock)
        time_text = line[_TIME_AT : _TIME_AT + 23]  # YYYY-MM-DD HH:MM:SS,mmm
        iso = f"{time_text[:10]}T{time_text[11:19]}.{time_text[20:23]}Z"
        if rng.random() < UNPARSED_SHARE:
            line = rng.choice(_BROKEN).format(time=time_text, task=name, job=execution.job_id)
            document = {"message": line, "@timestamp": iso, **LOGSTASH_FIELDS, "tags": UNPARSED_TAGS}
            index = f"{UNPARSED_INDEX}-{_day(iso)}"
            unparsed += 1
        else:
            document = {"@timestamp": iso, **LOGSTASH_FIELDS}  # the line is not kept once parsed
            for field in PARSED_FIELDS:
                value = getattr(execution, field)
                # Logstash converts the captured text, so numbers have the line's 6 decimals.
                document[field] = float(f"{value:.6f}") if isinstance(value, float) else value
            index = f"{PARSED_INDEX}-{_day(iso)}"
        document_id = hashlib.md5(line.encode()).hexdigest()
        out.append(f'{{"create":{{"_index":"{index}","_id":"{document_id}"}}}}\n{dumps(document)}\n')
    return "".join(out).encode(), unparsed


def index_names(start: float, end: float) -> list[str]:
    """Every daily index, parsed and unparsed, that executions between ``start`` and ``end`` fall into."""
    days = [
        time.strftime("%Y.%m.%d", time.gmtime(day * 86400)) for day in range(int(start // 86400), int(end // 86400) + 1)
    ]
    return [f"{prefix}-{day}" for prefix in (PARSED_INDEX, UNPARSED_INDEX) for day in days]
