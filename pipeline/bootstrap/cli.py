"""``python -m pipeline.bootstrap``: install the task-time templates, users and Kibana objects.

Every option has an environment variable (shown in ``--help``); passwords and keys are
best given that way, out of the process list. Exit codes: 0 done (also when nothing
changed), 1 something was rejected, 2 bad options or asset files, 3 a service was not
reachable or not ready in time, 4 authentication or permission failure, 130 interrupted
(Ctrl-C), 143 terminated (SIGTERM, e.g. ``docker stop``). Every failure is one line on stderr;
what was installed before an interruption stays, and a rerun completes it.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from elastic_transport import TransportError
from elasticsearch import ApiError

from pipeline import settings

from .alerting import install_alerting, load_alerting
from .assets import find_assets, is_bundled, load_elasticsearch_assets
from .elastic import Connection, check_version, describe, wait_for_cluster_health
from .errors import BootstrapError, UsageError
from .install import install_all
from .kibana import export_to_files, import_objects, parse_key, wait_for_kibana_status
from .progress import Progress
from .saved_objects import load_saved_objects

# Each option and the setting (pipeline.settings) that gives its variable, default and help.
_OPTIONS = (
    ("--es-url", settings.ES_URL),
    ("--cloud-id", settings.ES_CLOUD_ID),
    ("--username", settings.ES_USERNAME),
    ("--password", settings.ES_PASSWORD),
    ("--api-key", settings.ES_API_KEY),
    ("--ca-cert", settings.ES_CA_CERT),
    ("--kibana-url", settings.KIBANA_URL),
    ("--kibana-system-password", settings.KIBANA_SYSTEM_PASSWORD),
    ("--logstash-writer-password", settings.LOGSTASH_WRITER_PASSWORD),
    ("--kibana-viewer-password", settings.KIBANA_VIEWER_PASSWORD),
    ("--timeout", settings.BOOTSTRAP_TIMEOUT),
    ("--assets", settings.ASSETS),
)


@dataclass(frozen=True)
class BootstrapConfig:
    """Everything bootstrap was told, typed; values not given are None (their defaults apply later)."""

    command: str
    es_url: str | None
    cloud_id: str | None
    username: str | None
    password: str | None
    api_key: str | None
    ca_cert: str | None
    kibana_url: str | None
    kibana_system_password: str | None
    logstash_writer_password: str | None
    kibana_viewer_password: str | None
    timeout: float
    assets: str | None
    dry_run: bool
    skip_kibana: bool
    kibana_only: bool
    objects: list[str]


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> BootstrapConfig:
    """The options, each defaulting to its environment variable; raises ``UsageError`` for bad values."""
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bootstrap",
        description="Install the task-time index templates, service users and Kibana saved objects, "
        "or export the saved objects from Kibana into kibana/<type>/<id>.json.",
        epilog=(__doc__ or "").split("\n\n", 1)[1],
    )
    for option, setting in _OPTIONS:
        shown = "" if setting.default is None and setting.shown is None else f" (default {setting.shown_default()})"
        parser.add_argument(option, default=setting.raw(environ), help=f"{setting.help}{shown} [{setting.variable}]")
    parser.add_argument(
        "command",
        nargs="?",
        choices=("install", "export"),
        default="install",
        help="install (default), or export: write the saved objects Kibana holds into kibana/<type>/<id>.json",
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--skip-kibana", action="store_true", help="set up Elasticsearch only")
    only.add_argument("--kibana-only", action="store_true", help="wait for Kibana and import the saved objects only")
    parser.add_argument(
        "--object",
        action="append",
        default=[],
        metavar="TYPE:ID",
        help="export: also this object (with what it refers to); default: the objects in kibana/",
    )
    args = parser.parse_args(argv)
    try:
        timeout = float(args.timeout or settings.BOOTSTRAP_TIMEOUT.default)
    except ValueError:
        raise UsageError(f"--timeout must be a number of seconds, not {args.timeout!r}") from None
    return BootstrapConfig(
        command=args.command,
        es_url=args.es_url,
        cloud_id=args.cloud_id,
        username=args.username,
        password=args.password,
        api_key=args.api_key,
        ca_cert=args.ca_cert,
        kibana_url=args.kibana_url,
        kibana_system_password=args.kibana_system_password,
        logstash_writer_password=args.logstash_writer_password,
        kibana_viewer_password=args.kibana_viewer_password,
        timeout=timeout,
        assets=args.assets,
        dry_run=args.dry_run,
        skip_kibana=args.skip_kibana,
        kibana_only=args.kibana_only,
        objects=args.object,
    )


def check_settings(config: BootstrapConfig) -> None:
    """Combinations and values no service needs to be asked about; raises ``UsageError``."""
    if config.cloud_id and config.es_url:
        raise UsageError("give --es-url or --cloud-id, not both")
    if config.api_key and config.password:
        raise UsageError("give a password or an API key, not both")
    if config.command == "export" and (config.skip_kibana or config.dry_run):
        raise UsageError("export takes neither --skip-kibana nor --dry-run")
    if config.cloud_id and not config.kibana_url and not config.skip_kibana:
        raise UsageError("with --cloud-id, give --kibana-url (the deployment's Kibana endpoint) or --skip-kibana")
    if config.kibana_url and urlsplit(config.kibana_url).scheme not in ("http", "https"):
        raise UsageError(f"--kibana-url must be an http:// or https:// URL, not {config.kibana_url!r}")
    if config.ca_cert and not os.path.isfile(config.ca_cert):
        raise UsageError(f"CA certificate {config.ca_cert} does not exist")


def warn_default_secrets(config: BootstrapConfig, progress: Progress) -> None:
    """The compose stack's .env ships placeholder passwords; say so while they are still in use."""
    secrets = {
        "the Elasticsearch password": config.password,
        "KIBANA_SYSTEM_PASSWORD": config.kibana_system_password,
        "LOGSTASH_WRITER_PASSWORD": config.logstash_writer_password,
        "KIBANA_VIEWER_PASSWORD": config.kibana_viewer_password,
    }
    weak = [name for name, value in secrets.items() if value and value.startswith("changeme")]
    if weak:
        names = ", ".join(weak)
        progress.say(
            "security", f"warning: {names}: still a changeme default; change it before others can reach the stack"
        )


def connection(config: BootstrapConfig) -> Connection:
    """The Elasticsearch (and Kibana) endpoint and credentials the options name."""
    return Connection(
        urls=tuple(u.strip() for u in (config.es_url or settings.ES_URL.default).split(",") if u.strip()),
        cloud_id=config.cloud_id,
        username=config.username or (settings.ES_USERNAME.default if config.password else None),
        password=config.password,
        api_key=config.api_key,
        ca_cert=config.ca_cert,
    )


def set_up_elasticsearch(config: BootstrapConfig, target: Connection, progress: Progress) -> None:
    """Templates, ILM policy, roles and users: what Logstash and Kibana need before they start."""
    assets = load_elasticsearch_assets(find_assets(config.assets))
    client = target.client()
    try:
        check_version(wait_for_cluster_health(client, target.where, config.timeout, progress))
        passwords = {
            "LOGSTASH_WRITER_PASSWORD": config.logstash_writer_password or "",
            "KIBANA_VIEWER_PASSWORD": config.kibana_viewer_password or "",
        }
        install_all(client, assets, progress, passwords, config.kibana_system_password, config.dry_run)
    except (ApiError, TransportError) as exc:  # anything the steps did not expect, still one line
        raise describe(exc, "setting up Elasticsearch") from None


def run(config: BootstrapConfig, progress: Progress) -> None:
    """Everything bootstrap does, in order; raises ``BootstrapError`` on the first failure.

    Every asset file is read and checked before any service is contacted.
    """
    check_settings(config)
    root = find_assets(config.assets)
    load_elasticsearch_assets(root)
    target = connection(config)
    kibana_url = config.kibana_url or settings.KIBANA_URL.default
    if config.command == "export":
        if is_bundled(root):
            raise UsageError("export writes into kibana/ of a checkout: run it there or give --assets")
        keys = [o.key for o in load_saved_objects(root)] + [parse_key(text) for text in config.objects]
        kibana = target.kibana(kibana_url)
        wait_for_kibana_status(kibana, config.timeout, progress)
        export_to_files(kibana, root, list(dict.fromkeys(keys)), progress)
        return
    saved_objects = [] if config.skip_kibana else load_saved_objects(root)
    alerting = [] if config.skip_kibana else load_alerting(root)
    warn_default_secrets(config, progress)
    if not config.kibana_only:
        set_up_elasticsearch(config, target, progress)
    if config.skip_kibana:
        progress.say("kibana", "skipped (--skip-kibana)")
        return
    kibana = target.kibana(kibana_url)
    wait_for_kibana_status(kibana, config.timeout, progress)
    import_objects(kibana, saved_objects, progress, config.dry_run)
    install_alerting(kibana, alerting, progress, config.dry_run)


class Terminated(BaseException):
    """SIGTERM (``docker stop``), handled like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit code."""
    try:
        config = parse_args(argv, os.environ if environ is None else environ)
    except UsageError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    progress = Progress(dry_run=config.dry_run)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(config, progress)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bootstrap: interrupted", file=sys.stderr, flush=True)
        return 130
    except Terminated:
        print("bootstrap: terminated (SIGTERM)", file=sys.stderr, flush=True)
        return 143
    print(f"bootstrap: {progress.summary()}", flush=True)
    return 0
