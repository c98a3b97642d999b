"""Reading one task-time line the way the Logstash pipeline does.

The line regex is built from ``pipeline.line`` (labels, field order, statuses, time
format), never copied from ``logstash/pipeline/task-time.conf``; the tests hold the two
readings equal. Accepted lines are exactly those the pipeline parses:

* the grok, anchored at both ends: ASCII ``\\S+`` names, seconds as decimals, integers or
  exponents (read whole, converted to 64-bit floats), one of ``STATUSES``;
* the date filter (Joda-Time, ``yyyy-MM-dd HH:mm:ss,SSS`` in ``TASK_TIME_TZ``): an
  impossible date (``2026-02-30``, hour 24, second 60) or a local time that does not exist
  in the zone (the hour skipped when clocks go forward) is refused; a local time that exists
  twice (clocks going back) is the earlier instant, as Joda resolves it.
"""

from __future__ import annotations

import datetime
import re
from urllib.parse import unquote_to_bytes

from pipeline.line import EMPTY, FIELDS, OPTIONAL_FIELDS, REQUIRED_FIELDS, STATUSES, TIME_FORMAT, Field

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


# Possessive quantifiers (``++``, ``?+``) change nothing in what matches, as every field is
# followed by a space or the line's end, which none of them can take, but they spare the
# regex engine its backtracking bookkeeping: the scan runs several times faster.
KIND_PATTERNS = {
    "timestamp": _timestamp_pattern(),
    "name": rb"\S++",
    "seconds": rb"-?[0-9]++(?:\.[0-9]++)?+(?:[eE][+-]?[0-9]++)?+",
    "status": b"|".join(re.escape(status.encode()) for status in STATUSES),
}


def line_body(captured: tuple[Field, ...] = FIELDS, statuses: tuple[str, ...] = STATUSES) -> bytes:
    """The regex of one whole line (no anchors), with one group per field in ``captured``.

    Required fields come first in their order, then each optional field, in its order, or
    not at all, exactly as ``pipeline.line.format_fields`` writes them. The status group
    captures only ``statuses`` (empty for the others).
    """

    def field_pattern(field: Field) -> bytes:
        value = KIND_PATTERNS[field.kind]
        if field.kind == "status" and field in captured and statuses != STATUSES:
            others = b"|".join(re.escape(status.encode()) for status in STATUSES if status not in statuses)
            taken = b"|".join(re.escape(status.encode()) for status in statuses)
            value = b"(?:" + others + b"|(" + taken + b"))"
        elif field in captured:
            value = b"(" + value + b")"
        else:
            value = b"(?:" + value + b")"
        return re.escape(f"{field.label}: ".encode()) + value

    required = b" ".join(field_pattern(field) for field in REQUIRED_FIELDS)
    return required + b"".join(b"(?: " + field_pattern(field) + b")?+" for field in OPTIONAL_FIELDS)


def scan_pattern(captured: tuple[Field, ...], statuses: tuple[str, ...] = STATUSES) -> re.Pattern[bytes]:
    """Whole lines in a chunk that starts with ``\\n``: each match starts at its line's ``\\n``
    and ends before the next one (the literal start lets the engine skip to candidates fast)."""
    return re.compile(b"\\n" + line_body(captured, statuses) + b"(?=\\n)")


FULL_LINE = re.compile(line_body())
FIELD_NAMES = tuple(field.name for field in FIELDS)
SECONDS_FIELDS = frozenset(field.name for field in FIELDS if field.kind == "seconds")
NAME_FIELDS = frozenset(field.name for field in FIELDS if field.kind == "name")


def decode_name(raw: bytes | str) -> str:
    """Undo ``pipeline.line.encode_name``: the name as the application gave it (``""`` for ``-``).

    Exact for every name ``encode_name`` writes. Bytes that are not UTF-8 become U+FFFD, as
    Logstash's UTF-8 codec reads them. (May move to ``pipeline.line`` beside ``encode_name``.)
    """
    if isinstance(raw, str):
        raw = raw.encode("utf-8", "surrogatepass")
    if raw == EMPTY.encode():
        return ""
    data = unquote_to_bytes(raw) if b"%" in raw else raw
    try:
        return data.decode("utf-8", "surrogatepass")
    except UnicodeDecodeError:
        return data.decode("utf-8", "replace")


# ------------------------------------------------------------------------ the date filter

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
    """Epoch seconds of a line's ``YYYY-MM-DD HH:MM:SS`` in one zone, or None where Joda refuses it."""

    def __init__(self, tz: datetime.tzinfo = datetime.UTC) -> None:
        self.tz = tz
        self.is_utc = tz is datetime.UTC or getattr(tz, "key", None) in _UTC_NAMES

    def seconds(self, prefix: bytes) -> int | None:
        """``prefix`` is the first 19 bytes of the timestamp (digits already checked by the regex)."""
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


def read_line(line: bytes, clock: LineClock) -> dict[str, object] | None:
    """The fields the pipeline gives one line (without its newline), or None if it keeps it unparsed.

    Names stay as written (encoded, like in Elasticsearch); seconds are floats; the time is
    ``epoch_millis`` (int) and ``@timestamp`` (ISO string).
    """
    match = FULL_LINE.fullmatch(line)
    if match is None or b"\n" in line:
        return None
    values = dict(zip(FIELD_NAMES, match.groups(), strict=True))
    stamp = values.pop("timestamp")
    seconds = clock.seconds(stamp[:19])
    if seconds is None:
        return None
    fields: dict[str, object] = {}
    for name, value in values.items():
        if value is None:
            continue
        if name in SECONDS_FIELDS:
            fields[name] = float(value)
        else:
            fields[name] = value.decode("utf-8", "replace")
    fields["epoch_millis"] = seconds * 1000 + int(stamp[20:23])
    fields["@timestamp"] = iso_millis(fields["epoch_millis"])  # type: ignore[arg-type]
    return fields
