"""The ``Time:`` stamp of every line, both ways, in one zone.

Written as ``YYYY-MM-DD HH:MM:SS,mmm`` (logging's ``asctime``) in ``TASK_TIME_TZ``, UTC by
default, and read back the way Logstash's date filter reads it (Joda-Time,
``yyyy-MM-dd HH:mm:ss,SSS`` in the same zone): an impossible date (``2026-02-30``, hour 24,
second 60) or a local time that does not exist in the zone (the hour skipped when clocks
go forward) is refused; a local time that exists twice (clocks going back) is the earlier
instant, as Joda resolves it.
"""

from __future__ import annotations

import datetime
import re
import time
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pipeline import settings

from .fields import Field

TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # followed by ",mmm", like logging's asctime

# A valid date and time of day as a regex: the date filter's own checks (Joda refuses month
# 13, February 30 or hour 24), so that in UTC no line needs a check of its own. Years are
# proleptic Gregorian, year 0 included, as in Joda.
_LEAP_YEAR = rb"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (
    rb"(?:[0-9]{4}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
    rb"|02-(?:0[1-9]|1[0-9]|2[0-8]))|" + _LEAP_YEAR + rb"-02-29)"
)
_STRFTIME = {"%Y-%m-%d": _DATE, "%H": rb"(?:[01][0-9]|2[0-3])", "%M": rb"[0-5][0-9]", "%S": rb"[0-5][0-9]"}


def _timestamp_pattern() -> bytes:
    """``TIME_FORMAT`` and logging's ``,mmm`` as a regex that takes valid times only."""
    pattern = re.escape(TIME_FORMAT.encode())
    for directive, value in _STRFTIME.items():
        escaped = re.escape(directive.encode())
        if escaped not in pattern:
            raise ValueError(f"TIME_FORMAT {TIME_FORMAT!r} has no {directive}")
        pattern = pattern.replace(escaped, value)
    return pattern + rb",[0-9]{3}"


def timezone_named(name: str, variable: str = settings.TIMEZONE.variable) -> datetime.tzinfo:
    """The zone for an exact IANA name (UTC when empty); raises ``ValueError`` naming ``variable``.

    Logstash's date filter reads the same variable, so only names both accept are taken:
    exact IANA names (Joda, like zoneinfo, is case-sensitive), no abbreviations.
    """
    name = name.strip() or "UTC"
    if name == "UTC":
        return datetime.UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"{variable}={name!r} is not a known IANA time zone") from exc


def timezone_from_env(environ: Mapping[str, str] | None = None) -> datetime.tzinfo:
    """The zone line times are written and read in: ``TASK_TIME_TZ``; raises ``ValueError`` naming it."""
    return timezone_named(settings.TIMEZONE.text(environ), settings.TIMEZONE.variable)


TIMESTAMP_PATTERN = _timestamp_pattern()
# The first field of every line, task or queue-health.
TIME = Field("Time", "timestamp", "timestamp")


_EPOCH_DAY = 719_468  # days from 0000-03-01 to 1970-01-01 in the proleptic Gregorian calendar
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
_UTC_NAMES = frozenset({"UTC"})


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (year 0 included, as in Joda)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146_097 + day_of_era - _EPOCH_DAY


class LineClock:
    """A line's time in one zone, both ways: epoch seconds to text, and text to epoch seconds.

    Writing caches the date part per whole second: most lines of a busy worker share it.
    """

    def __init__(self, tz: datetime.tzinfo = datetime.UTC) -> None:
        self.tz = tz
        self.is_utc = tz is datetime.UTC or getattr(tz, "key", None) in _UTC_NAMES
        self._second = -1
        self._prefix = ""

    def format(self, timestamp: float) -> str:
        """``YYYY-MM-DD HH:MM:SS,mmm`` for epoch seconds ``timestamp``."""
        second = int(timestamp)
        if second != self._second:
            if self.tz is datetime.UTC:
                self._prefix = time.strftime(TIME_FORMAT, time.gmtime(second))
            else:
                self._prefix = datetime.datetime.fromtimestamp(second, self.tz).strftime(TIME_FORMAT)
            self._second = second
        return f"{self._prefix},{int((timestamp - second) * 1000):03d}"

    def seconds(self, prefix: bytes) -> int | None:
        """Epoch seconds of ``prefix``, a stamp's first 19 bytes (digits checked); None if Joda refuses it."""
        year, month, day = int(prefix[0:4]), int(prefix[5:7]), int(prefix[8:10])
        hour, minute, second = int(prefix[11:13]), int(prefix[14:16]), int(prefix[17:19])
        if not (1 <= month <= 12 and hour <= 23 and minute <= 59 and second <= 59 and day >= 1):
            return None
        if day > (29 if month == 2 and _is_leap(year) else _MONTH_DAYS[month - 1]):
            return None
        local = _days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second
        if self.is_utc:
            return local
        # Python's datetime starts at year 1; before any zone transition the offset is constant.
        wall = datetime.datetime(max(year, 1), month if year else 1, day if year else 1, hour, minute, second)
        earlier = self.tz.utcoffset(wall.replace(fold=0))
        later = self.tz.utcoffset(wall.replace(fold=1))
        if earlier is None or later is None:
            return None
        if earlier < later:
            # The clocks went forward: this wall time was skipped. Joda refuses it.
            return None
        # Otherwise fold=0: for a repeated wall time, the earlier instant (Joda's choice).
        return local - int(earlier.total_seconds())

    def millis(self, stamp: bytes) -> int | None:
        """Epoch milliseconds of a whole stamp (``…,mmm``), or None where Joda refuses it."""
        seconds = self.seconds(stamp[:19])
        return None if seconds is None else seconds * 1000 + int(stamp[20:23])


def iso_millis(epoch_millis: int) -> str:
    """``2026-11-21T23:48:57.244Z``, the way the pipeline's documents show ``@timestamp``."""
    seconds, millis = divmod(epoch_millis, 1000)
    days, rest = divmod(seconds, 86_400)
    # civil_from_days: the inverse of _days_from_civil, valid for year 0 too.
    z = days + _EPOCH_DAY
    era = z // 146_097
    day_of_era = z - era * 146_097
    year_of_era = (day_of_era - day_of_era // 1460 + day_of_era // 36_524 - day_of_era // 146_096) // 365
    day_of_year = day_of_era - (365 * year_of_era + year_of_era // 4 - year_of_era // 100)
    mp = (5 * day_of_year + 2) // 153
    day = day_of_year - (153 * mp + 2) // 5 + 1
    month = mp + (3 if mp < 10 else -9)
    year = year_of_era + era * 400 + (month <= 2)
    hour, rest = divmod(rest, 3_600)
    minute, second = divmod(rest, 60)
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}.{millis:03d}Z"


def format_line(timestamp: float, fields: str, clock: LineClock | None = None) -> str:
    """The whole line: ``Time: <stamp> <fields>``, written at ``timestamp`` (epoch seconds; UTC without ``clock``)."""
    return f"{TIME.label}: {(clock or LineClock()).format(timestamp)} {fields}"
