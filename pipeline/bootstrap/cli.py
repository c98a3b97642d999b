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
from urllib.parse import urlsplit

from elastic_transport import TransportError
from elasticsearch import ApiError

from .alerting import install_alerting, load_alerting
from .assets import find_assets, is_bundled, load_elasticsearch_assets
from .elastic import Connection, check_version, describe, wait_for_cluster_health
from .install import install_all
from .kibana import export_to_files, import_objects, parse_key, wait_for_kibana_status
from .report import BootstrapError, Reporter, UsageError
from .saved_objects import load_saved_objects

# (option, environment variable, help)
_OPTIONS = (
    ("--es-url", "ES_URL", "Elasticsearch URL(s), comma-separated (default http://localhost:9200)"),
    ("--cloud-id", "ES_CLOUD_ID", "Elastic Cloud deployment id, instead of --es-url"),
    ("--username", "ES_USERNAME", "user for Elasticsearch and Kibana (default elastic)"),
    ("--password", "ES_PASSWORD", "that user's password"),
    ("--api-key", "ES_API_KEY", "encoded API key, instead of username and password"),
    ("--ca-cert", "ES_CA_CERT", "CA certificate (PEM) to verify Elasticsearch and Kibana"),
    ("--kibana-url", "KIBANA_URL", "Kibana URL (default http://localhost:5601)"),
    ("--kibana-system-password", "KIBANA_SYSTEM_PASSWORD", "set the kibana_system user's password"),
    ("--logstash-writer-password", "LOGSTASH_WRITER_PASSWORD", "create Logstash's writer user with this password"),
    ("--kibana-viewer-password", "KIBANA_VIEWER_PASSWORD", "create the read-only dashboard user with this password"),
    ("--timeout", "BOOTSTRAP_TIMEOUT", "seconds to wait for each service to be ready (default 300)"),
    (
        "--assets",
        "TASK_TIME_ASSETS",
        "folder holding elasticsearch/ and kibana/ (default: this checkout, else the package's copy)",
    ),
)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bootstrap",
        description="Install the task-time index templates, service users and Kibana saved objects, "
        "or export the saved objects from Kibana into kibana/<type>/<id>.json.",
        epilog=__doc__.split("\n\n", 1)[1],
    )
    for option, variable, text in _OPTIONS:
        parser.add_argument(option, default=environ.get(variable) or None, help=f"{text} [{variable}]")
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
    return parser.parse_args(argv)


def check_settings(args: argparse.Namespace) -> None:
    """Combinations and values no service needs to be asked about; raises ``UsageError``."""
    try:
        args.timeout = float(args.timeout or 300)
    except ValueError:
        raise UsageError(f"--timeout must be a number of seconds, not {args.timeout!r}") from None
    if args.cloud_id and args.es_url:
        raise UsageError("give --es-url or --cloud-id, not both")
    if args.api_key and args.password:
        raise UsageError("give a password or an API key, not both")
    if args.command == "export" and (args.skip_kibana or args.dry_run):
        raise UsageError("export takes neither --skip-kibana nor --dry-run")
    if args.cloud_id and not args.kibana_url and not args.skip_kibana:
        raise UsageError("with --cloud-id, give --kibana-url (the deployment's Kibana endpoint) or --skip-kibana")
    if args.kibana_url and urlsplit(args.kibana_url).scheme not in ("http", "https"):
        raise UsageError(f"--kibana-url must be an http:// or https:// URL, not {args.kibana_url!r}")
    if args.ca_cert and not os.path.isfile(args.ca_cert):
        raise UsageError(f"CA certificate {args.ca_cert} does not exist")


def warn_default_secrets(args: argparse.Namespace, reporter: Reporter) -> None:
    """The compose stack's .env ships placeholder passwords; say so while they are still in use."""
    secrets = {
        "the Elasticsearch password": args.password,
        "KIBANA_SYSTEM_PASSWORD": args.kibana_system_password,
        "LOGSTASH_WRITER_PASSWORD": args.logstash_writer_password,
        "KIBANA_VIEWER_PASSWORD": args.kibana_viewer_password,
    }
    weak = [name for name, value in secrets.items() if value and value.startswith("changeme")]
    if weak:
        names = ", ".join(weak)
        reporter.say(
            "security", f"warning: {names}: still a changeme default; change it before others can reach the stack"
        )


def connection(args: argparse.Namespace) -> Connection:
    """The Elasticsearch (and Kibana) endpoint and credentials the options name."""
    return Connection(
        urls=tuple(u.strip() for u in (args.es_url or "http://localhost:9200").split(",") if u.strip()),
        cloud_id=args.cloud_id,
        username=args.username or ("elastic" if args.password else None),
        password=args.password,
        api_key=args.api_key,
        ca_cert=args.ca_cert,
    )


def set_up_elasticsearch(args: argparse.Namespace, target: Connection, reporter: Reporter) -> None:
    """Templates, ILM policy, roles and users: what Logstash and Kibana need before they start."""
    assets = load_elasticsearch_assets(find_assets(args.assets))
    client = target.client()
    try:
        check_version(wait_for_cluster_health(client, target.where, args.timeout, reporter))
        passwords = {
            "LOGSTASH_WRITER_PASSWORD": args.logstash_writer_password or "",
            "KIBANA_VIEWER_PASSWORD": args.kibana_viewer_password or "",
        }
        install_all(client, assets, reporter, passwords, args.kibana_system_password, args.dry_run)
    except (ApiError, TransportError) as exc:  # anything the steps did not expect, still one line
        raise describe(exc, "setting up Elasticsearch") from None


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    """Everything bootstrap does, in order; raises ``BootstrapError`` on the first failure.

    Every asset file is read and checked before any service is contacted.
    """
    check_settings(args)
    root = find_assets(args.assets)
    load_elasticsearch_assets(root)
    target = connection(args)
    kibana_url = args.kibana_url or "http://localhost:5601"
    if args.command == "export":
        if is_bundled(root):
            raise UsageError("export writes into kibana/ of a checkout: run it there or give --assets")
        keys = [o.key for o in load_saved_objects(root)] + [parse_key(text) for text in args.object]
        kibana = target.kibana(kibana_url)
        wait_for_kibana_status(kibana, args.timeout, reporter)
        export_to_files(kibana, root, list(dict.fromkeys(keys)), reporter)
        return
    saved_objects = [] if args.skip_kibana else load_saved_objects(root)
    alerting = [] if args.skip_kibana else load_alerting(root)
    warn_default_secrets(args, reporter)
    if not args.kibana_only:
        set_up_elasticsearch(args, target, reporter)
    if args.skip_kibana:
        reporter.say("kibana", "skipped (--skip-kibana)")
        return
    kibana = target.kibana(kibana_url)
    wait_for_kibana_status(kibana, args.timeout, reporter)
    import_objects(kibana, saved_objects, reporter, args.dry_run)
    install_alerting(kibana, alerting, reporter, args.dry_run)


class Terminated(BaseException):
    """SIGTERM (``docker stop``), handled like Ctrl-C."""


def _terminate(signum: int, frame: object) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv, os.environ if environ is None else environ)
    reporter = Reporter(dry_run=args.dry_run)
    signal.signal(signal.SIGTERM, _terminate)
    try:
        run(args, reporter)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bootstrap: interrupted", file=sys.stderr, flush=True)
        return 130
    except Terminated:
        print("bootstrap: terminated (SIGTERM)", file=sys.stderr, flush=True)
        return 143
    print(f"bootstrap: {reporter.summary()}", flush=True)
    return 0
