"""``rq-task-time-worker``: ``rq worker`` with the timed classes as defaults.

Every argument goes to RQ's own ``rq worker`` command. The defaults reach it through
click's ``default_map``, so the usual precedence holds: an option on the command line,
then ``RQ_WORKER_CLASS`` / ``RQ_JOB_CLASS``, then ``TimedWorker`` and ``TimedJob``; a
worker without ``--name`` is named ``<host>.<pid>`` (RQ 2 names it with a random hex
string, which says nothing in a Kibana table). The chosen class paths are resolved before
RQ starts (after ``--path`` folders are added, as RQ does), so a typo is one clear line
instead of the traceback ``rq worker`` prints for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

from rq.utils import import_attribute

from .settings import default_name

DEFAULT_WORKER_CLASS = "pipeline.worker.TimedWorker"
DEFAULT_JOB_CLASS = "pipeline.job.TimedJob"


def worker_defaults() -> dict[str, Any]:
    """The ``rq worker`` option defaults this command sets (click's ``default_map`` for ``worker``)."""
    return {
        "worker_class": DEFAULT_WORKER_CLASS,
        "job_class": DEFAULT_JOB_CLASS,
        "name": default_name(),
    }


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


def chosen_classes(args: Sequence[str], defaults: dict[str, Any]) -> dict[str, str]:
    """The worker and job class paths ``rq worker`` would use for ``args``, by kind.

    The options are read by RQ's own ``worker`` command (click, with the same defaults and
    environment variables); its ``--path`` folders are added to ``sys.path`` as RQ adds them.
    """
    from rq.cli import main as rq_main

    context = rq_main.commands["worker"].make_context(
        "worker", list(args), default_map=defaults, resilient_parsing=True
    )
    for folder in context.params.get("path") or ():
        if folder not in sys.path:
            sys.path.append(folder)
    return {kind: context.params[f"{kind}_class"] for kind in ("worker", "job")}


def check_classes(args: Sequence[str], defaults: dict[str, Any]) -> None:
    """Resolve the classes ``rq worker`` would use for ``args``; raise ``ValueError`` with a one-line reason."""
    for kind, path in chosen_classes(args, defaults).items():
        problem = _check_class(path, kind)
        if problem:
            raise ValueError(problem)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``rq-task-time-worker``."""
    sys.path.insert(0, os.getcwd())  # like `rq worker`, find task and class modules in the current folder
    args = list(sys.argv[1:] if argv is None else argv)
    defaults = worker_defaults()
    try:
        check_classes(args, defaults)
    except ValueError as exc:
        sys.stderr.write(f"rq-task-time-worker: {exc}\n")
        raise SystemExit(2) from None

    from rq.cli import main as rq_main

    rq_main(args=["worker", *args], prog_name="rq-task-time-worker", default_map={"worker": defaults})


if __name__ == "__main__":
    main()
