"""The metrics endpoint: ``/metrics`` (Prometheus text format) and ``/queues`` (JSON) on one port.

Only imported when ``--metrics-port`` is given, and only this module imports
``prometheus_client`` (the ``metrics`` extra: ``pip install "rq-task-time[metrics]"``). A
custom collector turns the last judged sample (``metrics.families``) into metric families
at each scrape: a scrape never touches Redis. The server runs in daemon threads beside the
loop.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterable, Iterator
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from .metrics import COUNTER, MetricsState, families, queues_document

EXTRA_HINT = 'pip install "rq-task-time[metrics]"'


class MetricsError(Exception):
    """The endpoint cannot start; the message is one line for the user."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr: stderr is for the monitor's state changes."""


def collector(state: MetricsState) -> Any:
    """A ``prometheus_client`` collector over ``state``."""
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

    class SampleCollector:
        def collect(self) -> Iterator[Metric]:
            for item in families(state):
                labels = sorted({key for labels, _ in item.samples for key in labels})
                kind = CounterMetricFamily if item.kind == COUNTER else GaugeMetricFamily
                metric = kind(item.name, item.help, labels=labels)
                for values, value in item.samples:
                    metric.add_metric([values.get(key, "") for key in labels], value)
                yield metric

        def describe(self) -> list[Metric]:
            return []  # nothing known before a sample; keeps registration from calling collect()

    return SampleCollector()


def application(state: MetricsState) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: ``/metrics``, ``/queues``, 404 for the rest."""
    from prometheus_client import CollectorRegistry, make_wsgi_app

    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector(state))
    metrics_app = make_wsgi_app(registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "/")
        if path == "/metrics":
            return metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/queues":
            document = queues_document(state)
            status = "200 OK" if document is not None else "503 Service Unavailable"
            body = json.dumps(document if document is not None else {"error": "no sample yet"}).encode()
            start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        body = b"not found: try /metrics or /queues\n"
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def start(state: MetricsState, host: str, port: int) -> WSGIServer:
    """Serve ``state`` on ``host:port`` in a daemon thread; raises ``MetricsError`` with one line."""
    try:
        import prometheus_client  # noqa: F401 - checked here so the error is one line
    except ImportError:
        raise MetricsError(f"--metrics-port needs the prometheus_client package: {EXTRA_HINT}") from None
    try:
        kind = _Server6 if ":" in host else _Server  # an IPv6 address such as :: or ::1
        server = make_server(host, port, application(state), server_class=kind, handler_class=_QuietHandler)
    except OSError as exc:
        raise MetricsError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
