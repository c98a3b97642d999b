"""Bootstrap's errors: each a one-line reason and the exit code of its kind.

Exit codes: 1 something was rejected, 2 bad options or asset files, 3 a service was not
reachable or not ready in time, 4 authentication or permission failure.
"""

from __future__ import annotations

import re
import ssl


class BootstrapError(Exception):
    """A failure reported as one line; ``exit_code`` tells which kind."""

    exit_code = 1


class Rejected(BootstrapError):
    """Elasticsearch or Kibana refused something bootstrap sent."""

    exit_code = 1


class UsageError(BootstrapError):
    """Bad options, environment or asset files."""

    exit_code = 2


class Unreachable(BootstrapError):
    """A service could not be reached, or was not ready before the timeout."""

    exit_code = 3


class HandshakeFailed(Unreachable):
    """TLS failed (e.g. ``https://`` on a plain-HTTP port): waiting cannot fix it."""


class AccessDenied(BootstrapError):
    """Wrong credentials (401) or missing privileges (403)."""

    exit_code = 4


def connection_reason(exc: BaseException) -> str:
    """The readable cause of a failed connection, whole (e.g. ``Connection refused``, or the TLS failure)."""
    cause = exc
    while (inner := cause.__cause__ or cause.__context__) is not None:
        cause = inner
    if isinstance(cause, ssl.SSLError):
        text = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(cause)).strip() or str(cause.reason)
        hint = " (does the port speak plain HTTP? then use http://)" if cause.reason == "WRONG_VERSION_NUMBER" else ""
        return f"TLS handshake failed: {text}{hint}"
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return " ".join(str(cause).split()) or type(cause).__name__
