"""Installing what ``elasticsearch/`` holds, through the client's typed APIs.

Roles and users are installed only when a password for them is given (the compose stack
does; a shared cluster's admin may not want them). A component template that sets a
lifecycle policy, and the policy itself, need ILM: where the cluster has no ILM they are
reported as skipped, never silently left out.

Assets go in one by one, in dependency order. When Elasticsearch rejects one, what this
run already installed stays (each piece is valid on its own); the error names it and
says that a rerun, once the file is fixed, installs the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from elastic_transport import TransportError
from elasticsearch import ApiError, AuthenticationException, AuthorizationException, Elasticsearch, NotFoundError

from .assets import MANAGED_BY, Asset
from .elastic import SERVICE, _reason, describe, ilm_available
from .errors import Rejected
from .progress import Progress

KIBANA_SYSTEM_USER = "kibana_system"

Getter = Callable[[Elasticsearch, str], Mapping[str, Any]]
Putter = Callable[[Elasticsearch, str, dict[str, Any]], Any]
# kind -> (read the installed object, install it, keys leading to where our marker goes)
_APIS: dict[str, tuple[Getter, Putter, tuple[str, ...]]] = {
    "component template": (
        lambda c, n: c.cluster.get_component_template(name=n)["component_templates"][0]["component_template"],
        lambda c, n, b: c.cluster.put_component_template(name=n, body=b),
        ("_meta",),
    ),
    "index template": (
        lambda c, n: c.indices.get_index_template(name=n)["index_templates"][0]["index_template"],
        lambda c, n, b: c.indices.put_index_template(name=n, body=b),
        ("_meta",),
    ),
    "ILM policy": (
        lambda c, n: c.ilm.get_lifecycle(name=n)[n],
        lambda c, n, b: c.ilm.put_lifecycle(name=n, body=b),
        ("policy", "_meta"),
    ),
    "role": (
        lambda c, n: c.security.get_role(name=n)[n],
        lambda c, n, b: c.security.put_role(name=n, body=b),
        ("metadata",),
    ),
    "user": (
        lambda c, n: c.security.get_user(username=n)[n],
        lambda c, n, b: c.security.put_user(username=n, body=b),
        ("metadata",),
    ),
}


def _dig(content: Mapping[str, Any], keys: tuple[str, ...]) -> Mapping[str, Any]:
    for key in keys:
        content = content.get(key) or {}
    return content


def body_with_marker(asset: Asset) -> dict[str, Any]:
    """The asset's body with ``managed_by`` and its digest added where the kind keeps metadata."""
    body = {**asset.body}
    keys = _APIS[asset.kind][2]
    holder = body
    for key in keys[:-1]:
        holder[key] = {**holder.get(key, {})}
        holder = holder[key]
    holder[keys[-1]] = {**holder.get(keys[-1], {}), "managed_by": MANAGED_BY, "digest": asset.digest}
    return body


class Installer:
    """Installs assets one by one, reporting created / updated / unchanged / skipped."""

    def __init__(self, client: Elasticsearch, progress: Progress, dry_run: bool = False) -> None:
        self.client = client
        self.progress = progress
        self.dry_run = dry_run
        self.changed: list[str] = []  # what this run created or updated, for the error of a later step

    def _installed(self, asset: Asset) -> Mapping[str, Any] | None:
        try:
            return _APIS[asset.kind][0](self.client, asset.name)
        except (NotFoundError, KeyError, IndexError):
            return None
        except (ApiError, TransportError) as exc:
            raise describe(exc, f"reading {asset.kind} {asset.name}") from None

    def _put(self, asset: Asset, body: dict[str, Any]) -> None:
        try:
            _APIS[asset.kind][1](self.client, asset.name, body)
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
            state = ""
            if self.changed:
                state = (
                    f"; installed by this run and left in place: {', '.join(self.changed)}; "
                    "fix the file and run bootstrap again to install the rest"
                )
            raise Rejected(
                f"{SERVICE}: rejected {asset.kind} {asset.name} from {asset.file}: {reason}{state}"
            ) from None

    def install(self, asset: Asset, extra: Mapping[str, Any] | None = None, credentials_ok: bool = True) -> None:
        """Create or update ``asset`` unless the cluster already holds this exact content.

        ``extra`` is sent but not compared (a user's password); ``credentials_ok`` False
        forces an update even when the content matches (the password changed).
        """
        what = f"{asset.kind} {asset.name}"
        installed = self._installed(asset)
        marker = _dig(installed, _APIS[asset.kind][2]) if installed is not None else {}
        ours = f"v{asset.version}" if asset.version is not None else ""
        if installed is not None and marker.get("digest") == asset.digest and credentials_ok:
            self.progress.outcome(SERVICE, what, "unchanged", ours)
            return
        version = asset.version
        theirs = installed.get("version") if installed is not None and version is not None else None
        if isinstance(theirs, int) and version is not None and theirs > version:
            self.progress.outcome(
                SERVICE, what, "skipped", f"installed v{theirs} is newer than this bootstrap's {ours}"
            )
            return
        if not self.dry_run:
            self._put(asset, {**body_with_marker(asset), **(extra or {})})
            self.changed.append(what)
        if installed is None:
            self.progress.outcome(SERVICE, what, "created", ours)
        else:
            detail = f"v{theirs} -> {ours}" if isinstance(theirs, int) and theirs != asset.version else ours
            self.progress.outcome(SERVICE, what, "updated", detail or "content changed")

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
            self.progress.outcome(SERVICE, what, "unchanged")
            return
        if not self.dry_run:
            try:
                self.client.security.change_password(username=KIBANA_SYSTEM_USER, password=password)
            except (ApiError, TransportError) as exc:
                raise describe(exc, f"setting the {KIBANA_SYSTEM_USER} password") from None
        self.progress.outcome(SERVICE, what, "updated")


def install_security(installer: Installer, security: list[Asset], passwords: Mapping[str, str]) -> None:
    """Each user whose password variable is set, after the roles those users have."""
    users = [a for a in security if a.kind == "user"]
    password_of = {u.name: passwords.get(str(u.body.get("metadata", {}).get("password_from") or "")) for u in users}
    needed = {role for u in users if password_of[u.name] for role in u.body.get("roles", [])}
    for asset in (a for a in security if a.kind == "role"):
        if asset.name in needed:
            installer.install(asset)
        else:
            installer.progress.outcome(SERVICE, f"role {asset.name}", "skipped", "none of its users is being created")
    for asset in users:
        password = password_of[asset.name]
        if not password:
            variable = asset.body.get("metadata", {}).get("password_from")
            installer.progress.outcome(SERVICE, f"user {asset.name}", "skipped", f"{variable} not set")
            continue
        ok = installer.authenticates(asset.name, password)
        installer.install(asset, extra={"password": password}, credentials_ok=ok)


def install_all(
    client: Elasticsearch,
    assets: list[Asset],
    progress: Progress,
    passwords: Mapping[str, str],
    kibana_system_password: str | None,
    dry_run: bool = False,
) -> None:
    """Install every asset in order; ``passwords`` maps a password variable name to its value."""
    installer = Installer(client, progress, dry_run)
    security = [a for a in assets if a.kind in ("role", "user")]
    if security or kibana_system_password:
        wanted = {a.body.get("metadata", {}).get("password_from") for a in security if a.kind == "user"}
        if not kibana_system_password and not any(passwords.get(str(name)) for name in wanted):
            progress.say(SERVICE, "security: skipped (no service-user password given; see --help)")
        else:
            install_security(installer, security, passwords)
            if kibana_system_password:
                installer.set_kibana_system_password(kibana_system_password)
    rest = [a for a in assets if a.kind not in ("role", "user")]
    has_ilm = ilm_available(client) if any(a.needs_ilm for a in rest) else True
    if not has_ilm:
        names = ", ".join(f"{a.kind} {a.name}" for a in rest if a.needs_ilm)
        progress.say(
            SERVICE,
            f"retention: this cluster has no index lifecycle management (ILM); not installing {names}. "
            "Old task-time indices stay until you delete them.",
        )
    for asset in rest:
        if asset.needs_ilm and not has_ilm:
            progress.outcome(SERVICE, f"{asset.kind} {asset.name}", "skipped", "needs ILM")
        else:
            installer.install(asset)
