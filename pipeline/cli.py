"""``rq-task-time-worker``: ``rq worker`` with the timed classes as defaults.

Every argument is passed to ``rq worker`` unchanged. When neither the arguments nor
``RQ_WORKER_CLASS`` / ``RQ_JOB_CLASS`` name a worker or job class, ``TimedWorker`` and
``TimedJob`` are used. Class paths are resolved before RQ starts, so a typo is one clear
line instead of the traceback ``rq worker`` prints for it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from rq.utils import import_attribute

DEFAULT_WORKER_CLASS = "pipeline.worker.TimedWorker"
DEFAULT_JOB_CLASS = "pipeline.job.TimedJob"
_OPTIONS = {
    "worker": (("-w", "--worker-class"), "RQ_WORKER_CLASS", DEFAULT_WORKER_CLASS),
    "job": (("-j", "--job-class"), "RQ_JOB_CLASS", DEFAULT_JOB_CLASS),
}


def _given(args: Sequence[str], flags: tuple[str, ...]) -> str | None:
    for index, arg in enumerate(args):
        if arg in flags and index + 1 < len(args):
            return args[index + 1]
        for flag in flags:
            if flag.startswith("--") and arg.startswith(flag + "="):
                return arg.split("=", 1)[1]
    return None


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
    for kind, (flags, variable, default) in _OPTIONS.items():
        path = _given(args, flags) or environ.get(variable)
        if path is None:
            result = [flags[1], default, *result]
            path = default
        problem = _check_class(path, kind)
        if problem:
            raise ValueError(problem)
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
