"""Configuration errors: one line on stderr and exit 2, in every mode, before anything connects or is written.

Nothing listens on the URLs here: a configuration that got past the options would try to
connect (exit 2 with a different line for --once, a retry loop for the loop) or busy-loop.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.monitor.judge import parse_latency_limits
from pipeline.monitor.options import parse_args
from tests.support.monitor import monitor_env

pytestmark = [pytest.mark.unit]

NOBODY = "redis://127.0.0.1:1/0"  # port 1: nothing listens
MODES = (("--check",), ("--once",), ())  # () is the loop

# (flags, environment, what the one line says)
BAD = [
    (["--url", "http://x"], {}, "--url (RQ_REDIS_URL): Redis URL must specify one of the following schemes"),
    ([], {"RQ_REDIS_URL": "localhost:6379"}, "--url (RQ_REDIS_URL): Redis URL must specify"),
    (["--url", "redis://127.0.0.1:notaport/0"], {}, "Port could not be cast to integer value as 'notaport'"),
    (["--url", "redis://127.0.0.1:99999/0"], {}, "Port out of range"),
    (["--interval", "nan"], {}, "argument --interval: 'nan' is not a finite number"),
    (["--interval", "inf"], {}, "argument --interval: 'inf' is not a finite number"),
    (["--interval=-inf"], {}, "argument --interval: '-inf' is not a finite number"),
    (["--interval", "0"], {}, "--interval (TASK_TIME_MONITOR_INTERVAL) must be positive"),
    (["--interval", "-1"], {}, "--interval (TASK_TIME_MONITOR_INTERVAL) must be positive"),
    (["--interval", "soon"], {}, "argument --interval: 'soon' is not a number"),
    ([], {"TASK_TIME_MONITOR_INTERVAL": "nan"}, "TASK_TIME_MONITOR_INTERVAL='nan' is not a finite number"),
    ([], {"TASK_TIME_MONITOR_INTERVAL": "inf"}, "TASK_TIME_MONITOR_INTERVAL='inf' is not a finite number"),
    ([], {"TASK_TIME_MONITOR_INTERVAL": "0"}, "--interval (TASK_TIME_MONITOR_INTERVAL) must be positive"),
    (["--head", "0"], {}, "--head (TASK_TIME_MONITOR_HEAD) must be 1 to 1000, not 0"),
    (["--head", "1001"], {}, "--head (TASK_TIME_MONITOR_HEAD) must be 1 to 1000, not 1001"),
    (["--head", "1000000"], {}, "--head (TASK_TIME_MONITOR_HEAD) must be 1 to 1000, not 1000000"),
    ([], {"TASK_TIME_MONITOR_HEAD": "5000"}, "--head (TASK_TIME_MONITOR_HEAD) must be 1 to 1000, not 5000"),
    (["--head", "2.5"], {}, "argument --head: invalid int value: '2.5'"),
    (["--max-backoff", "inf"], {}, "argument --max-backoff: 'inf' is not a finite number"),
    (["--max-backoff", "0"], {}, "--max-backoff (TASK_TIME_MONITOR_MAX_BACKOFF) must be positive"),
    (["--check-window", "nan"], {}, "argument --check-window: 'nan' is not a finite number"),
    (["--check-window", "-1"], {}, "--check-window (TASK_TIME_MONITOR_CHECK_WINDOW) must not be negative"),
    (["--memory-warn", "nan"], {}, "argument --memory-warn: 'nan' is not a finite number"),
    (["--memory-critical", "inf"], {}, "argument --memory-critical: 'inf' is not a finite number"),
    (["--scheduled-grace", "nan"], {}, "argument --scheduled-grace: 'nan' is not a finite number"),
    (["--worker-ttl", "inf"], {}, "argument --worker-ttl: 'inf' is not a finite number"),
    ([], {"TASK_TIME_MONITOR_WORKER_TTL": "nan"}, "TASK_TIME_MONITOR_WORKER_TTL='nan' is not a finite number"),
    (["--max-latency", "default=inf"], {}, "latency limit 'default=inf' must be a finite number of seconds"),
    (["--max-latency", "default=nan"], {}, "latency limit 'default=nan' must be positive"),
    (["--no-such-option"], {}, "unrecognized arguments: --no-such-option"),
    (["--head"], {}, "argument --head: expected one argument"),
]


def _run(mode: tuple[str, ...], flags: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess[str]:
    url = [] if any(flag == "--url" for flag in flags) or "RQ_REDIS_URL" in env else ["--url", NOBODY]
    command = [sys.executable, "-m", "pipeline.monitor", *url, "--log", str(log), *mode, *flags]
    return subprocess.run(command, env=monitor_env(**env), capture_output=True, text=True, timeout=20)


def _run_in_process(
    mode: tuple[str, ...], flags: list[str], env: dict[str, str], log: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """``pipeline.monitor.cli.main`` in this process, with only ``env`` of the monitor's variables set."""
    import contextlib
    import io
    import os

    from pipeline.monitor import cli

    for variable in [name for name in os.environ if name.startswith(("TASK_TIME_", "RQ_"))]:
        monkeypatch.delenv(variable)
    for variable, value in env.items():
        monkeypatch.setenv(variable, value)
    url = [] if any(flag == "--url" for flag in flags) or "RQ_REDIS_URL" in env else ["--url", NOBODY]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main([*url, "--log", str(log), *mode, *flags])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("mode", MODES, ids=["check", "once", "loop"])
@pytest.mark.parametrize(("flags", "env", "message"), BAD, ids=[" ".join([*f, *e.values()]) for f, e, _ in BAD])
def test_a_configuration_error_is_one_line_and_exit_2(
    mode: tuple[str, ...],
    flags: list[str],
    env: dict[str, str],
    message: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = tmp_path / "m.log"
    code, out, err = _run_in_process(mode, flags, env, log, monkeypatch)
    assert code == 2, (code, out, err)
    assert out == ""
    [line] = err.splitlines()
    assert line.startswith("rq-task-time-monitor: error: "), line
    assert message in line, line
    assert not log.exists()


# As a process too, in every mode: the command a user runs, a sample of the cases above.
AS_A_PROCESS = [BAD[0], BAD[1], BAD[4], BAD[14], BAD[-2]]


@pytest.mark.parametrize("mode", MODES, ids=["check", "once", "loop"])
@pytest.mark.parametrize(
    ("flags", "env", "message"), AS_A_PROCESS, ids=[" ".join([*f, *e.values()]) for f, e, _ in AS_A_PROCESS]
)
def test_a_configuration_error_is_one_line_and_exit_2_as_a_process(
    mode: tuple[str, ...], flags: list[str], env: dict[str, str], message: str, tmp_path: Path
) -> None:
    log = tmp_path / "m.log"
    done = _run(mode, flags, env, log)
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("rq-task-time-monitor: error: "), line
    assert message in line, line
    assert not log.exists()


def test_a_bad_url_never_shows_its_password(tmp_path: Path) -> None:
    for url in ("http://monitor:s3cret-pass@x", "redis://monitor:s3cret-pass@127.0.0.1:notaport/0"):
        done = _run(("--check",), ["--url", url], {}, tmp_path / "m.log")
        assert done.returncode == 2 and "s3cret-pass" not in done.stderr + done.stdout, done.stderr


def test_a_configuration_error_that_holds_control_characters_is_escaped(tmp_path: Path) -> None:
    done = _run(("--check",), ["\x1b[2Jjunk\nOK all good"], {}, tmp_path / "m.log")
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line == "rq-task-time-monitor: error: unrecognized arguments: \\x1b[2Jjunk OK all good"


def test_the_bounds_themselves_are_accepted() -> None:
    low, high = settings.HEAD_RANGE
    assert (low, high) == (1, 1000)
    assert parse_args(["--head", str(low)], environ={}).head == low
    assert parse_args(["--head", str(high)], environ={}).head == high
    assert parse_args(["--interval", "0.01", "--check-window", "0"], environ={}).interval == 0.01
    assert parse_args([], environ={"RQ_REDIS_URL": "unix:///run/redis.sock?db=2"}).url.startswith("unix://")
    assert parse_latency_limits("default=1e9") == {"default": 1e9}


def test_redis_error_text_is_escaped_on_stdout_and_stderr(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from zoneinfo import ZoneInfo

    from redis import Redis
    from redis.exceptions import ResponseError

    from pipeline.lines.clock import LineClock
    from pipeline.monitor.cli import run_check, run_loop
    from pipeline.monitor.output import Output
    from pipeline.monitor.rq_source import RqSource

    config = parse_args(["--url", NOBODY, "--name", "n", "--check-window", "0", "--once"], environ={})
    output = Output("n", None, LineClock(ZoneInfo("UTC")))
    monitor = RqSource(config, Redis.from_url(NOBODY), output)

    def broken() -> None:
        raise ResponseError("ERR key rq:queue:\x1b]0;pwned\x07 is\nOK forged")

    monkeypatch.setattr(monitor, "sample", broken)
    assert run_check([monitor], config) == 2
    assert run_loop([monitor], config, output) == 2
    out, err = capsys.readouterr()
    for text in (out, err):
        [line] = text.splitlines()
        assert "\x1b" not in line and "\x07" not in line and "\\x1b]0;pwned\\x07" in line, line


def test_check_never_ends_in_a_traceback_and_exit_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 1 means warn: whatever goes wrong while sampling is one critical line and exit 2."""
    from zoneinfo import ZoneInfo

    from redis import Redis

    from pipeline.lines.clock import LineClock
    from pipeline.monitor.cli import run_check
    from pipeline.monitor.output import Output
    from pipeline.monitor.rq_source import RqSource

    config = parse_args(["--url", NOBODY, "--name", "n", "--check-window", "0", "--check"], environ={})
    monitor = RqSource(config, Redis.from_url(NOBODY), Output("n", None, LineClock(ZoneInfo("UTC"))))

    def broken() -> None:
        raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")

    monkeypatch.setattr(monitor, "sample", broken)
    assert run_check([monitor], config) == 2
    [line] = capsys.readouterr().out.splitlines()
    assert line.startswith("CRITICAL n: cannot sample Redis at 127.0.0.1:1/0 (error): 'utf-8' codec can't decode")
