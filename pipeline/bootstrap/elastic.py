"""Connecting to Elasticsearch (and Kibana, with the same credentials) and waiting for the cluster.

Every failure of a request becomes one ``BootstrapError`` line through ``describe``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from elastic_transport import TlsError, TransportError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    UnsupportedProductError,
)
from elasticsearch import ConnectionError as ESConnectionError

from pipeline import settings

from .errors import AccessDenied, BootstrapError, HandshakeFailed, Rejected, Unreachable, UsageError, connection_reason
from .kibana_client import KibanaClient, auth_header
from .progress import Progress, wait_for

SERVICE = "elasticsearch"
SUPPORTED_MAJOR = 9
# Statuses a proxy in front of a starting cluster answers with: keep waiting.
_STARTING = (502, 503, 504)


@dataclass(frozen=True)
class Connection:
    """How to reach the cluster and Kibana: URLs or a Cloud id, and one kind of credentials."""

    urls: tuple[str, ...] = (settings.ES_URL.default,)
    cloud_id: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_cert: str | None = None

    @property
    def where(self) -> str:
        return f"cloud id {self.cloud_id.split(':')[0]}" if self.cloud_id else ", ".join(self.urls)

    def client(self, request_timeout: float = 30) -> Elasticsearch:
        """An Elasticsearch client for these settings; a setting the client refuses is a ``UsageError``."""
        auth: dict[str, Any] = {}
        if self.api_key:
            auth["api_key"] = self.api_key
        elif self.username and self.password is not None:
            auth["basic_auth"] = (self.username, self.password)
        if self.ca_cert:
            auth["ca_certs"] = self.ca_cert
        hosts = None if self.cloud_id else list(self.urls)
        try:
            # One try per node: a dead node hands the request to the next one.
            return Elasticsearch(
                hosts,
                cloud_id=self.cloud_id,
                request_timeout=request_timeout,
                max_retries=max(0, len(self.urls) - 1),
                retry_on_timeout=True,
                **auth,
            )
        except ValueError as exc:
            raise UsageError(f"{SERVICE}: {exc}") from None

    def kibana(self, url: str) -> KibanaClient:
        """A Kibana client with the same credentials and CA certificate."""
        return KibanaClient(url, auth_header(self.username, self.password, self.api_key), self.ca_cert)


def _reason(exc: ApiError) -> str:
    """Elasticsearch's own ``type: reason`` out of an error response."""
    body = exc.body if isinstance(exc.body, Mapping) else {}
    error = body.get("error")
    if isinstance(error, Mapping):
        caused = error.get("caused_by", {})
        reason = f"{error.get('type')}: {error.get('reason')}"
        if isinstance(caused, Mapping) and caused.get("reason") and str(caused.get("reason")) not in reason:
            reason += f" ({caused.get('type')}: {caused.get('reason')})"
        return reason
    return " ".join(str(error or exc.message).split())[:300]


def describe(exc: ApiError | TransportError, doing: str) -> BootstrapError:
    """The one-line error for any failure of a request to Elasticsearch."""
    if isinstance(exc, AuthenticationException):
        return AccessDenied(
            f"{SERVICE}: authentication failed (401) while {doing}: check the username/password or API key"
        )
    if isinstance(exc, AuthorizationException):
        return AccessDenied(f"{SERVICE}: permission denied (403) while {doing}: {_reason(exc)}")
    if isinstance(exc, ApiError):
        return Rejected(f"{SERVICE}: HTTP {exc.meta.status} while {doing}: {_reason(exc)}")
    return Unreachable(f"{SERVICE}: connection failed while {doing}: {connection_reason(exc)}")


def _not_elasticsearch(where: str) -> UsageError:
    return UsageError(f"{SERVICE}: {where} is not Elasticsearch (no X-Elastic-Product header); check ES_URL")


def wait_for_cluster_health(client: Elasticsearch, where: str, timeout: float, progress: Progress) -> str:
    """Wait until the cluster is at least yellow; return its version.

    What waiting cannot fix fails at once: wrong credentials, a server that is not
    Elasticsearch, a TLS handshake that fails.
    """
    version = ""

    def probe() -> str | None:
        nonlocal version
        try:
            health = client.cluster.health(wait_for_status="yellow", timeout="5s")
            if health.get("status") not in ("yellow", "green"):
                return f"cluster status {health.get('status')}"
            nodes = client.nodes.info(node_id="_local", filter_path="nodes.*.version")
            node: Mapping[str, Any] = next(iter(nodes.get("nodes", {}).values()), {})
            version = node.get("version", "unknown")
            progress.say(SERVICE, f"ready at {where} (version {version}, status {health['status']})")
            return None
        except (AuthenticationException, AuthorizationException) as exc:
            raise describe(exc, "waiting for the cluster") from None
        except UnsupportedProductError:
            raise _not_elasticsearch(where) from None
        except TlsError as exc:
            raise HandshakeFailed(f"{SERVICE}: cannot connect to {where}: {connection_reason(exc)}") from None
        except ESConnectionError as exc:
            return connection_reason(exc)
        except ApiError as exc:
            if exc.meta.headers.get("x-elastic-product") != "Elasticsearch" and exc.meta.status not in _STARTING:
                raise _not_elasticsearch(where) from None
            return f"HTTP {exc.meta.status}: {_reason(exc)}"

    wait_for(probe, SERVICE, where, timeout, progress)
    return version


def check_version(version: str) -> None:
    major = version.split(".")[0]
    if major.isdigit() and int(major) != SUPPORTED_MAJOR:
        raise UsageError(
            f"{SERVICE}: version {version} is not supported; this bootstrap installs for {SUPPORTED_MAJOR}.x"
        )


def ilm_available(client: Elasticsearch) -> bool:
    """Whether the cluster has index lifecycle management (the x-pack-ilm module)."""
    try:
        client.ilm.get_status()
        return True
    except (AuthenticationException, AuthorizationException, TransportError) as exc:
        raise describe(exc, "checking for ILM") from None
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405, 410):  # "no handler found for uri [/_ilm/status]"
            return False
        raise describe(exc, "checking for ILM") from None
