"""A small Kibana HTTP client on ``elastic_transport``, the transport the Elasticsearch client uses.

Same credentials (from the one ``Connection``), CA certificate, retries on 502/503/504
and timeouts, and error types as the Elasticsearch side; HTTP errors come back as a
status and body for the caller to judge, connection failures as ``Unreachable``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

from elastic_transport import (
    JsonSerializer,
    NodeConfig,
    SerializationError,
    Serializer,
    TlsError,
    Transport,
    TransportError,
)
from elastic_transport.client_utils import basic_auth_to_header

from .assets import MANAGED_BY
from .errors import AccessDenied, HandshakeFailed, Unreachable, UsageError, connection_reason

SERVICE = "kibana"


class _Raw(Serializer):
    """Bodies passed through as bytes: multipart uploads, and pages that are not JSON."""

    mimetype: ClassVar[str] = "*/*"

    def dumps(self, data: Any) -> bytes:
        return data if isinstance(data, bytes) else str(data).encode()

    def loads(self, data: bytes) -> Any:
        return data


class _NdjsonLines(Serializer):
    """Kibana's export answers ``application/ndjson``: one object per line."""

    mimetype: ClassVar[str] = "application/ndjson"

    def dumps(self, data: Any) -> bytes:
        return b"".join(json.dumps(item).encode() + b"\n" for item in data)

    def loads(self, data: bytes) -> Any:
        return [json.loads(line) for line in data.splitlines() if line.strip()]


def auth_header(username: str | None, password: str | None, api_key: str | None) -> dict[str, str]:
    """The ``Authorization`` header for basic auth or an encoded API key, as the Elasticsearch client sends it."""
    if api_key:
        return {"authorization": f"ApiKey {api_key}"}
    if username and password is not None:
        return {"authorization": basic_auth_to_header((username, password))}
    return {}


class KibanaClient:
    """Requests to one Kibana, authenticated like the Elasticsearch requests."""

    def __init__(self, url: str, headers: Mapping[str, str], ca_cert: str | None = None, retries: int = 2) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{SERVICE}: {url!r} is not an http:// or https:// URL")
        self.url = url
        node = NodeConfig(
            parts.scheme,
            parts.hostname,
            parts.port or (443 if parts.scheme == "https" else 80),
            path_prefix=parts.path.rstrip("/"),
            headers={"kbn-xsrf": MANAGED_BY, **headers},
            ca_certs=ca_cert if parts.scheme == "https" else None,
            request_timeout=60,
        )
        serializers = {
            "application/json": JsonSerializer(),
            "application/ndjson": _NdjsonLines(),
            "multipart/*": _Raw(),
            "text/*": _Raw(),
        }
        self.transport = Transport([node], serializers=serializers, max_retries=retries, retry_on_timeout=True)

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        timeout: float | None = None,
    ) -> tuple[int, Any]:
        """Send one request; return the status and the decoded body (also for HTTP errors).

        Raises ``Unreachable`` when Kibana cannot be reached or answers with something unreadable.
        """
        headers = {"accept": "application/json"}
        if body is not None:
            headers["content-type"] = content_type
        try:
            response = self.transport.perform_request(
                method, path, body=body, headers=headers, request_timeout=timeout if timeout else 60
            )
        except TlsError as exc:
            raise HandshakeFailed(f"{SERVICE}: cannot connect to {self.url}: {connection_reason(exc)}") from None
        except SerializationError as exc:
            raise Unreachable(
                f"{SERVICE}: {self.url} answered with something that is not Kibana's API: {exc}"
            ) from None
        except TransportError as exc:
            raise Unreachable(f"{SERVICE}: connection to {self.url} failed: {connection_reason(exc)}") from None
        return response.meta.status, response.body


def message(body: Any) -> str:
    """Kibana's own explanation out of an error body."""
    if isinstance(body, Mapping):
        return str(body.get("message") or body.get("error") or body)
    text = body.decode(errors="replace") if isinstance(body, bytes) else str(body)
    return " ".join(text.split())[:300]


def check_auth(status: int, body: Any, doing: str) -> None:
    """401 and 403 as ``AccessDenied``: waiting or retrying cannot fix them."""
    if status == 401:
        raise AccessDenied(
            f"{SERVICE}: authentication failed (401) while {doing}: check the username/password or API key"
        )
    if status == 403:
        raise AccessDenied(f"{SERVICE}: permission denied (403) while {doing}: {message(body)}")
