"""Elasticsearch side of bootstrap: wait for the cluster, then install what ``elasticsearch/`` holds.

Roles and users are installed only when a password for them is given (the compose stack
does; a shared cluster's admin may not want them). A component template that sets a
lifecycle policy, and the policy itself, need ILM: where the cluster has no ILM they are
reported as skipped, never silently left out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from elastic_transport import TransportError
from elasticsearch import (
    ApiError,
    AuthenticationException,
    AuthorizationException,
    Elasticsearch,
    NotFoundError,
    UnsupportedProductError,
)
from elasticsearch import ConnectionError as ESConnectionError

from .assets import MANAGED_BY, Asset
from .report import AccessDenied, BootstrapError, Rejected, Reporter, Unreachable, UsageError
from .report import wait_until_ready as wait_until

SERVICE = "elasticsearch"
JSON = {"accept": "application/json", "content-type": "application/json"}
SUPPORTED_MAJOR = 9
KIBANA_SYSTEM_USER = "kibana_system"


@dataclass(frozen=True)
class Connection:
    """How to reach the cluster: URLs or a Cloud id, and one kind of credentials."""

    urls: tuple[str, ...] = ("http://localhost:9200",)
    cloud_id: str | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    ca_cert: str | None = None

    @property
    def where(self) -> str:
        return f"cloud id {self.cloud_id.split(':')[0]}" if self.cloud_id else ", ".join(self.urls)

    def client(self, request_timeout: float = 30) -> Elasticsearch:
        """A client for these settings; a setting the client refuses is a ``UsageError``."""
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
    return f"{error or exc.message}"


def describe(exc: ApiError | TransportError, doing: str) -> BootstrapError:
    """The one-line error for any failure of a request to Elasticsearch."""
    if isinstance(exc, (AuthenticationException, AuthorizationException)):
        return _denied(exc, doing)
    if isinstance(exc, ApiError):
        return Rejected(f"{SERVICE}: HTTP {exc.meta.status} while {doing}: {_reason(exc)}")
    return Unreachable(f"{SERVICE}: connection failed while {doing}: {exc.message or exc}")


def _denied(exc: ApiError, doing: str) -> AccessDenied:
    if isinstance(exc, AuthenticationException):
        return AccessDenied(
            f"{SERVICE}: authentication failed (401) while {doing}: check the username/password or API key"
        )
    return AccessDenied(f"{SERVICE}: permission denied (403) while {doing}: {_reason(exc)}")


def wait_until_ready(client: Elasticsearch, where: str, timeout: float, reporter: Reporter) -> str:
    """Wait until the cluster is at least yellow; return its version."""
    version = ""

    def probe() -> str | None:
        nonlocal version
        try:
            health = client.perform_request(
                "GET", "/_cluster/health", params={"wait_for_status": "yellow", "timeout": "5s"}, headers=JSON
            ).body
            if health.get("status") not in ("yellow", "green"):
                return f"cluster status {health.get('status')}"
            nodes = client.perform_request(
                "GET", "/_nodes/_local", params={"filter_path": "nodes.*.version"}, headers=JSON
            ).body
            version = next(iter(nodes.get("nodes", {}).values()), {}).get("version", "unknown")
            reporter.say(SERVICE, f"ready at {where} (version {version}, status {health['status']})")
            return None
        except (AuthenticationException, AuthorizationException) as exc:
            raise _denied(exc, "waiting for the cluster") from None
        except UnsupportedProductError:
            raise UsageError(f"{SERVICE}: {where} is not Elasticsearch") from None
        except ESConnectionError as exc:
            return str(exc.message or exc).split(":")[-1].strip() or "connection failed"
        except ApiError as exc:
            return f"HTTP {exc.meta.status}: {_reason(exc)}"

    wait_until(probe, SERVICE, where, timeout, reporter)
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
        client.perform_request("GET", "/_ilm/status", headers=JSON)
        return True
    except (AuthenticationException, AuthorizationException, TransportError) as exc:
        raise describe(exc, "checking for ILM") from None
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405, 410):  # "no handler found for uri [/_ilm/status]"
            return False
        raise describe(exc, "checking for ILM") from None


@dataclass(frozen=True)
class _Kind:
    """Where an asset kind lives in the REST API and where its marker goes."""

    path: str
    read: Callable[[Any, str], Mapping[str, Any]]  # (GET response body, name) -> the stored object
    marker: tuple[str, ...]  # keys leading to the dict the managed_by/digest marker goes into


_KINDS = {
    "component template": _Kind(
        "/_component_template/{}", lambda body, name: body["component_templates"][0]["component_template"], ("_meta",)
    ),
    "index template": _Kind(
        "/_index_template/{}", lambda body, name: body["index_templates"][0]["index_template"], ("_meta",)
    ),
    "ILM policy": _Kind("/_ilm/policy/{}", lambda body, name: body[name], ("policy", "_meta")),
    "role": _Kind("/_security/role/{}", lambda body, name: body[name], ("metadata",)),
    "user": _Kind("/_security/user/{}", lambda body, name: body[name], ("metadata",)),
}


def _dig(content: Mapping[str, Any], keys: tuple[str, ...]) -> Mapping[str, Any]:
    for key in keys:
        content = content.get(key) or {}
    return content


def body_with_marker(asset: Asset) -> dict[str, Any]:
    """The asset's body with ``managed_by`` and its digest added where the kind keeps metadata."""
    body = {**asset.body}
    keys = _KINDS[asset.kind].marker
    holder = body
    for key in keys[:-1]:
        holder[key] = {**holder.get(key, {})}
        holder = holder[key]
    holder[keys[-1]] = {**holder.get(keys[-1], {}), "managed_by": MANAGED_BY, "digest": asset.digest}
    return body


class Installer:
    """Installs assets one by one, reporting created / updated / unchanged / skipped."""

    def __init__(self, client: Elasticsearch, reporter: Reporter, dry_run: bool = False) -> None:
        self.client = client
        self.reporter = reporter
        self.dry_run = dry_run

    def _installed(self, asset: Asset) -> Mapping[str, Any] | None:
        kind = _KINDS[asset.kind]
        try:
            body = self.client.perform_request("GET", kind.path.format(asset.name), headers=JSON).body
            return kind.read(body, asset.name)
        except NotFoundError:
            return None
        except (KeyError, IndexError):
            return None
        except (ApiError, TransportError) as exc:
            raise describe(exc, f"reading {asset.kind} {asset.name}") from None

    def _put(self, asset: Asset, body: Mapping[str, Any]) -> None:
        try:
            self.client.perform_request("PUT", _KINDS[asset.kind].path.format(asset.name), body=body, headers=JSON)
        except (AuthenticationException, AuthorizationException, TransportError) as exc:
            raise describe(exc, f"installing {asset.kind} {asset.name}") from None
        except ApiError as exc:
            reason = _reason(exc)
            if asset.kind in ("role", "user") and "pattern_capture" in reason:
                # The .security index's analyzers live in the analysis-common module.
                reason += (
                    "; the cluster cannot create its .security index, so its native realm cannot store users "
                    "or roles (is the analysis-common module missing? Elasticsearch's integ-test distribution "
                    "lacks it)"
                )
            raise Rejected(
                f"{SERVICE}: rejected {asset.kind} {asset.name} from {asset.path.parent.name}/{asset.path.name}: "
                f"{reason}"
            ) from None

    def install(self, asset: Asset, extra: Mapping[str, Any] | None = None, credentials_ok: bool = True) -> None:
        """Create or update ``asset`` unless the cluster already holds this exact content.

        ``extra`` is sent but not compared (a user's password); ``credentials_ok`` False
        forces an update even when the content matches (the password changed).
        """
        what = f"{asset.kind} {asset.name}"
        installed = self._installed(asset)
        marker = _dig(installed, _KINDS[asset.kind].marker) if installed is not None else {}
        ours = f"v{asset.version}" if asset.version is not None else ""
        if installed is not None and marker.get("digest") == asset.digest and credentials_ok:
            self.reporter.outcome(SERVICE, what, "unchanged", ours)
            return
        theirs = installed.get("version") if installed is not None and asset.version is not None else None
        if isinstance(theirs, int) and theirs > asset.version:  # type: ignore[operator]
            self.reporter.outcome(
                SERVICE, what, "skipped", f"installed v{theirs} is newer than this bootstrap's {ours}"
            )
            return
        if not self.dry_run:
            self._put(asset, {**body_with_marker(asset), **(extra or {})})
        if installed is None:
            self.reporter.outcome(SERVICE, what, "created", ours)
        else:
            detail = f"v{theirs} -> {ours}" if isinstance(theirs, int) and theirs != asset.version else ours
            self.reporter.outcome(SERVICE, what, "updated", detail or "content changed")

    def authenticates(self, username: str, password: str) -> bool:
        """Whether ``username`` can log in with ``password``."""
        try:
            self.client.options(basic_auth=(username, password)).security.authenticate()
            return True
        except (AuthenticationException, NotFoundError):
            return False
        except (ApiError, TransportError) as exc:
            raise describe(exc, f"checking the password of {username}") from None

    def set_kibana_system_password(self, password: str) -> None:
        what = f"user {KIBANA_SYSTEM_USER} password"
        if self.authenticates(KIBANA_SYSTEM_USER, password):
            self.reporter.outcome(SERVICE, what, "unchanged")
            return
        if not self.dry_run:
            try:
                self.client.perform_request(
                    "POST", f"/_security/user/{KIBANA_SYSTEM_USER}/_password", body={"password": password}, headers=JSON
                )
            except (ApiError, TransportError) as exc:
                raise describe(exc, f"setting the {KIBANA_SYSTEM_USER} password") from None
        self.reporter.outcome(SERVICE, what, "updated")


def install_all(
    client: Elasticsearch,
    assets: list[Asset],
    reporter: Reporter,
    passwords: Mapping[str, str],
    kibana_system_password: str | None,
    dry_run: bool = False,
) -> None:
    """Install every asset in order; ``passwords`` maps a password variable name to its value."""
    installer = Installer(client, reporter, dry_run)
    security = [a for a in assets if a.kind in ("role", "user")]
    if security or kibana_system_password:
        wanted = {a.body.get("metadata", {}).get("password_from") for a in security if a.kind == "user"}
        if not kibana_system_password and not any(passwords.get(str(name)) for name in wanted):
            reporter.say(SERVICE, "security: skipped (no service-user password given; see --help)")
            security = []
        else:
            for asset in security:
                if asset.kind == "role":
                    installer.install(asset)
                    continue
                variable = asset.body.get("metadata", {}).get("password_from")
                password = passwords.get(str(variable)) if variable else None
                if not password:
                    reporter.outcome(SERVICE, f"user {asset.name}", "skipped", f"{variable} not set")
                    continue
                ok = installer.authenticates(asset.name, password)
                installer.install(asset, extra={"password": password}, credentials_ok=ok)
            if kibana_system_password:
                installer.set_kibana_system_password(kibana_system_password)
    rest = [a for a in assets if a.kind not in ("role", "user")]
    has_ilm = ilm_available(client) if any(a.needs_ilm for a in rest) else True
    if not has_ilm:
        names = ", ".join(f"{a.kind} {a.name}" for a in rest if a.needs_ilm)
        reporter.say(
            SERVICE,
            f"retention: this cluster has no index lifecycle management (ILM); not installing {names}. "
            "Old task-time indices stay until you delete them.",
        )
    for asset in rest:
        if asset.needs_ilm and not has_ilm:
            reporter.outcome(SERVICE, f"{asset.kind} {asset.name}", "skipped", "needs ILM")
        else:
            installer.install(asset)
