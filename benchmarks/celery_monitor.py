"""What a Celery queue-monitor sample costs on Redis and on RabbitMQ, beside RQ's on the same Redis.

    python -m benchmarks.celery_monitor --redis redis://127.0.0.1:6379/15 \\
        --amqp amqp://admin:pw@127.0.0.1:5672// --api http://admin:pw@127.0.0.1:15672 [--queues 100,1000] [--repeat 10]

It needs a Redis and a RabbitMQ it may fill (``python -m harness.rabbitmq``
starts a throwaway node; the Redis database is FLUSHed). For each count of queues it
fills N queues of 10 messages each and prints the median time of one sample over
``--repeat`` and what a sample sends: Redis commands (``INFO commandstats``) and round
trips; RabbitMQ API requests. On Redis, RQ's sample of N queues of 10 jobs is measured in
the same run, and Celery's both with the queues named (``--celery-queues``) and found
from kombu's bindings (``SCAN``).

Targets: Celery on Redis: 2 round trips with named queues, commands per queue constant;
RabbitMQ: 2 requests per sample whatever the number of queues.
"""

from __future__ import annotations

import argparse
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import quote

import amqp
from redis import Redis

from benchmarks.monitor import commands_of, median_seconds
from pipeline.monitor import rabbitmq
from pipeline.monitor.celery_redis import KombuLayout, take_celery_redis_sample
from pipeline.monitor.rabbitmq import api_from_urls, take_rabbit_sample
from pipeline.monitor.sample import take_sample

SMALL = 10


def fill_redis(admin: Redis, count: int) -> list[str]:
    """``count`` Celery queues of ``SMALL`` kombu messages (with bindings) and as many RQ queues of ``SMALL`` jobs."""
    admin.flushdb()
    now = time.time()
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    names = [f"cq{index:04}" for index in range(count)]
    message = json.dumps({"body": "", "headers": {"task_time_published_at": now, "eta": None}, "properties": {}})
    with admin.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.sadd(f"_kombu.binding.{name}", f"{name}\x06\x16\x06\x16{name}")
            pipe.lpush(name, *[message] * SMALL)
            ids = [str(uuid.uuid4()) for _ in range(SMALL)]
            pipe.sadd("rq:queues", f"rq:queue:{name}")
            for job_id in ids:
                pipe.hset(f"rq:job:{job_id}", mapping={"enqueued_at": stamp, "created_at": stamp, "origin": name})
            pipe.rpush(f"rq:queue:{name}", *ids)
        pipe.execute()
    return names


class Trips:
    """Counts ``pipeline.execute`` calls and single commands of one client: its round trips."""

    def __init__(self, client: Redis) -> None:
        self.count = 0
        original_pipeline, original_execute = client.pipeline, client.execute_command

        def pipeline(*args: object, **kwargs: object) -> object:
            pipe = original_pipeline(*args, **kwargs)  # type: ignore[arg-type]
            execute = pipe.execute

            def counted(*a: object, **k: object) -> object:
                self.count += 1
                return execute(*a, **k)  # type: ignore[arg-type]

            pipe.execute = counted  # type: ignore[method-assign]
            return pipe

        def command(*args: object, **kwargs: object) -> object:
            self.count += 1
            return original_execute(*args, **kwargs)

        client.pipeline = pipeline  # type: ignore[method-assign,assignment]
        client.execute_command = command  # type: ignore[method-assign]


def redis_rows(url: str, counts: list[int], repeat: int) -> None:
    admin = Redis.from_url(url)
    reader = Redis.from_url(url)
    trips = Trips(reader)
    layout = KombuLayout()
    for count in counts:
        names = fill_redis(admin, count)
        cases: list[tuple[str, Callable[[], object]]] = [
            ("RQ", lambda: take_sample(reader)),
            ("Celery, queues named", lambda names=names: take_celery_redis_sample(reader, layout, names)),
            ("Celery, from bindings", lambda: take_celery_redis_sample(reader, layout)),
        ]
        for case, action in cases:
            trips.count = 0
            action()
            round_trips = trips.count
            commands = commands_of(admin, action)
            seconds = median_seconds(action, repeat)
            row("redis", case, count, f"{commands} commands", round_trips, seconds)
    admin.flushdb()


def rabbit_rows(amqp_url: str, api_url: str, counts: list[int], repeat: int) -> None:
    admin_api = api_from_urls(api_url, amqp_url)
    for count in counts:
        vhost = f"bench-{count}"
        path = quote(vhost, safe="")
        rabbitmq.get_json(admin_api, "/api/overview")
        _request(admin_api, "PUT", f"/api/vhosts/{path}")
        _request(admin_api, "PUT", f"/api/permissions/{path}/{quote(admin_api.username)}", conf=".*")
        connection = amqp.Connection(
            host=f"{(admin_api.amqp or ('127.0.0.1', 5672))[0]}:{(admin_api.amqp or ('', 5672))[1]}",
            userid=admin_api.username,
            password=admin_api.password,
            virtual_host=vhost,
        )
        connection.connect()
        channel = connection.channel()
        for index in range(count):
            name = f"cq{index:04}"
            channel.queue_declare(name, auto_delete=False)
            for _ in range(SMALL):
                channel.basic_publish(amqp.Message("x", timestamp=int(time.time())), routing_key=name)
        connection.close()
        api = api_from_urls(api_url, amqp_url.rsplit("/", 1)[0] + "/" + path)
        sample = take_rabbit_sample(api)
        seconds = median_seconds(lambda api=api: take_rabbit_sample(api), repeat)  # type: ignore[misc]
        row("rabbitmq", "Celery", len(sample.queues), f"{sample.requests} requests", sample.requests, seconds)
        _request(admin_api, "DELETE", f"/api/vhosts/{path}")


def _request(api: rabbitmq.Api, method: str, path: str, conf: str | None = None) -> None:
    import base64
    import urllib.request

    body = None if conf is None else json.dumps({"configure": conf, "write": conf, "read": conf}).encode()
    request = urllib.request.Request(api.base + path, data=body, method=method)
    request.add_header("Authorization", "Basic " + base64.b64encode(f"{api.username}:{api.password}".encode()).decode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60):
        pass


def row(broker: str, case: str, queues: int, sent: str, trips: int, seconds: float) -> None:
    print(f"{broker:<9} {case:<22} {queues:>6} {sent:>15} {trips:>11} {seconds * 1e3:>10.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--redis", required=True, help="a Redis URL whose database may be flushed")
    parser.add_argument("--amqp", required=True, help="amqp://admin:password@host:port// of a throwaway node")
    parser.add_argument("--api", required=True, help="http://admin:password@host:15672 of that node")
    parser.add_argument("--queues", default="100,1000", help="queue counts, comma-separated")
    parser.add_argument("--repeat", type=int, default=10, help="samples per measurement (median)")
    args = parser.parse_args(argv)
    counts = [int(text) for text in args.queues.split(",")]
    print(f"{'broker':<9} {'case':<22} {'queues':>6} {'sent':>15} {'round trips':>11} {'ms':>10}")
    redis_rows(args.redis, counts, args.repeat)
    rabbit_rows(args.amqp, args.api, counts, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
