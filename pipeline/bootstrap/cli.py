"""``python -m pipeline.bootstrap``: install the task-time templates, users and Kibana objects.

Every option has an environment variable (shown in ``--help``); passwords and keys are
best given that way, out of the process list. Exit codes: 0 done (also when nothing
changed), 1 something was rejected, 2 bad options or asset files, 3 a service was not
reachable or not ready in time, 4 authentication or permission failure.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from elastic_transport import TransportError
from elasticsearch import ApiError

from .assets import find_assets, load_elasticsearch_assets, load_saved_objects
from .elastic import Connection, check_version, describe, install_all
from .elastic import wait_until_ready as wait_for_elasticsearch
from .kibana import KibanaConnection, import_objects
from .kibana import wait_until_ready as wait_for_kibana
from .report import BootstrapError, Reporter, UsageError

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
    ("--timeout", "BOOTSTRAP_TIMEOUT", "seconds to wait for each service to be ready (default 300)"),
    ("--assets", "TASK_TIME_ASSETS", "folder holding elasticsearch/ and kibana/ (default: this checkout)"),
)


def parse_args(argv: Sequence[str] | None, environ: Mapping[str, str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.bootstrap",
        description="Install the task-time index templates, service users and Kibana saved objects.",
        epilog=__doc__.split("\n\n", 1)[1],
    )
    for option, variable, text in _OPTIONS:
        parser.add_argument(option, default=environ.get(variable) or None, help=f"{text} [{variable}]")
    parser.add_argument("--dry-run", action="store_true", help="show what would change, change nothing")
    parser.add_argument("--skip-kibana", action="store_true", help="set up Elasticsearch only")
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
    if args.cloud_id and not args.kibana_url and not args.skip_kibana:
        raise UsageError("with --cloud-id, give --kibana-url (the deployment's Kibana endpoint) or --skip-kibana")
    if args.ca_cert and not os.path.isfile(args.ca_cert):
        raise UsageError(f"CA certificate {args.ca_cert} does not exist")


def warn_default_secrets(args: argparse.Namespace, reporter: Reporter) -> None:
    """The compose stack's .env ships placeholder passwords; say so while they are still in use."""
    secrets = {
        "the Elasticsearch password": args.password,
        "KIBANA_SYSTEM_PASSWORD": args.kibana_system_password,
        "LOGSTASH_WRITER_PASSWORD": args.logstash_writer_password,
    }
    weak = [name for name, value in secrets.items() if value and value.startswith("changeme")]
    if weak:
        names = ", ".join(weak)
        reporter.say(
            "security", f"warning: {names}: still a changeme default; change it before others can reach the stack"
        )


def run(args: argparse.Namespace, reporter: Reporter) -> None:
    """Everything bootstrap does, in order; raises ``BootstrapError`` on the first failure."""
    check_settings(args)
    root = find_assets(args.assets)
    assets = load_elasticsearch_assets(root)
    saved_objects = [] if args.skip_kibana else load_saved_objects(root)
    username = args.username or ("elastic" if args.password else None)
    warn_default_secrets(args, reporter)
    connection = Connection(
        urls=tuple(u.strip() for u in (args.es_url or "http://localhost:9200").split(",") if u.strip()),
        cloud_id=args.cloud_id,
        username=username,
        password=args.password,
        api_key=args.api_key,
        ca_cert=args.ca_cert,
    )
    client = connection.client()
    try:
        check_version(wait_for_elasticsearch(client, connection.where, args.timeout, reporter))
        install_all(
            client,
            assets,
            reporter,
            passwords={"LOGSTASH_WRITER_PASSWORD": args.logstash_writer_password or ""},
            kibana_system_password=args.kibana_system_password,
            dry_run=args.dry_run,
        )
    except (ApiError, TransportError) as exc:  # anything the steps did not expect, still one line
        raise describe(exc, "setting up Elasticsearch") from None
    if args.skip_kibana:
        reporter.say("kibana", "skipped (--skip-kibana)")
        return
    kibana = KibanaConnection(
        url=args.kibana_url or "http://localhost:5601",
        username=username,
        password=args.password,
        api_key=args.api_key,
        ca_cert=args.ca_cert,
    )
    wait_for_kibana(kibana, args.timeout, reporter)
    import_objects(kibana, saved_objects, reporter, args.dry_run)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Entry point; returns the exit code."""
    args = parse_args(argv, os.environ if environ is None else environ)
    reporter = Reporter(dry_run=args.dry_run)
    try:
        run(args, reporter)
    except BootstrapError as exc:
        print(f"bootstrap: error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    except KeyboardInterrupt:
        print("bootstrap: interrupted", file=sys.stderr)
        return 130
    print(f"bootstrap: {reporter.summary()}", flush=True)
    return 0
