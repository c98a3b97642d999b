"""``rq-task-time-worker``: ``rq worker`` with the timed classes as defaults.

Every argument is passed to ``rq worker`` unchanged. When neither the arguments nor
``RQ_WORKER_CLASS`` / ``RQ_JOB_CLASS`` name a worker or job class, ``TimedWorker`` and
``TimedJob`` are used, and a worker without ``--name`` is named ``<host>.<pid>`` (RQ 2
names it with a random hex string, which says nothing in a Kibana table). Class paths
are resolved before RQ starts (after ``--path`` folders are added, as RQ does), so a typo
is one clear line instead of the traceback ``rq worker`` prints for it.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Sequence

from rq.utils import import_attribute

DEFAULT_WORKER_CLASS = "pipeline.worker.TimedWorker"
DEFAULT_JOB_CLASS = "pipeline.job.TimedJob"
_OPTIONS = {
    "worker": (("-w", "--worker-class"), "RQ_WORKER_CLASS", DEFAULT_WORKER_CLASS),
    "job": (("-j", "--job-class"), "RQ_JOB_CLASS", DEFAULT_JOB_CLASS),
}


def _values(args: Sequence[str], short: str, long: str) -> list[str]:
    """Every value given for an option, in the forms click accepts: ``-w X``, ``-wX``, ``--w X``, ``--w=X``."""
    values = []
    for index, arg in enumerate(args):
        if arg in (short, long) and index + 1 < len(args):
            values.append(args[index + 1])
        elif arg.startswith(long + "="):
            values.append(arg.split("=", 1)[1])
        elif arg.startswith(short) and not arg.startswith("--") and len(arg) > len(short):
            values.append(arg[len(short) :])
    return values


def _check_class(path: str, kind: str) -> str | None:
    from rq.job import Job
    from rq.worker import BaseWorker

    try:
        found = import_attribute(path)
    except (ImportError, ValueError, AttributeError) as exc:
        return f"cannot import {kind} class {path!r}: {exc}"
    base = Job if kind == "job" else BaseWorker
    if not (isinstance(found, type) and issubclass(found, base)):
        return f"{path!r} is not an RQ {kind} class"
    return None


def worker_arguments(args: Sequence[str], environ: dict[str, str] | None = None) -> list[str]:
    """The ``rq worker`` arguments for ``args``: the timed classes added where none is chosen.

    Raises ``ValueError`` with a one-line reason when a chosen class cannot be imported.
    """
    environ = dict(os.environ) if environ is None else environ
    result = list(args)
    for folder in reversed(_values(args, "-P", "--path")):
        sys.path.insert(0, folder)
    for kind, (flags, variable, default) in _OPTIONS.items():
        given = _values(args, *flags)
        path = given[-1] if given else environ.get(variable)
        if path is None:
            result = [flags[1], default, *result]
            path = default
        problem = _check_class(path, kind)
        if problem:
            raise ValueError(problem)
    if not _values(args, "-n", "--name"):
        result = ["--name", f"{socket.gethostname()}.{os.getpid()}", *result]
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rq-task-time-worker``."""
    sys.path.insert(0, os.getcwd())  # like `rq worker`, find task and class modules in the current folder
    try:
        args = worker_arguments(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        sys.stderr.write(f"rq-task-time-worker: {exc}\n")
        raise SystemExit(2) from None

    from rq.cli import main as rq_main

    rq_main(args=["worker", *args], prog_name="rq-task-time-worker")


if __name__ == "__main__":
    main()
