"""The monitor's Celery options (``--celery-broker`` and the rest), each with its variable in
``pipeline.settings``, read into one typed ``CeleryConfig``.

``options.parse_args`` calls ``add_options`` and ``celery_config``; with a Celery broker and
neither ``--url`` nor ``RQ_REDIS_URL``, RQ is not sampled (``rq_url_given``).
"""

from __future__ import annotations

import argparse
import codecs
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pipeline import settings

from .celery_redis import KombuLayout
from .rabbitmq import Api, api_from_urls

OPTIONS = (
    ("--celery-broker", settings.CELERY_BROKER),
    ("--rabbitmq-api", settings.RABBITMQ_API),
    ("--celery-queues", settings.CELERY_QUEUES),
    ("--celery-priority-steps", settings.CELERY_PRIORITY_STEPS),
    ("--celery-sep", settings.CELERY_SEP),
    ("--celery-keyprefix", settings.CELERY_KEYPREFIX),
)


@dataclass(frozen=True)
class CeleryConfig:
    """Which Celery broker to sample, and how."""

    broker_url: str
    broker: str  # "redis" or "rabbitmq"
    queues: list[str] | None  # None: every queue found
    layout: KombuLayout  # Redis only
    api: Api | None  # RabbitMQ only


def add_options(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """The Celery flags, each defaulting to its variable."""
    group = parser.add_argument_group("Celery")
    for flag, setting in OPTIONS:
        value = setting.raw(environ) or setting.default
        help_text = f"{setting.help} ({setting.variable}; default {setting.shown_default()})".replace("%", "%%")
        group.add_argument(flag, default=value, help=help_text)


def rq_url_given(argv: Sequence[str] | None, environ: Mapping[str, str]) -> bool:
    """Whether ``--url`` or ``RQ_REDIS_URL`` names RQ's Redis explicitly."""
    probe = argparse.ArgumentParser(add_help=False)
    probe.add_argument("--url")
    known, _ = probe.parse_known_args(argv)
    return known.url is not None or settings.REDIS_URL.raw(environ) is not None


def _steps(text: str) -> tuple[int, ...]:
    try:
        steps = tuple(sorted({int(part) for part in text.split(",") if part.strip()}))
    except ValueError:
        raise ValueError(f"--celery-priority-steps {text!r} is not comma-separated whole numbers") from None
    if not steps or steps[0] != 0 or steps[-1] > 255:
        raise ValueError(f"--celery-priority-steps {text!r} must start at 0 (kombu's base list) and stay <= 255")
    return steps


def _sep(text: str) -> str:
    try:
        sep = codecs.decode(text, "unicode_escape")
    except UnicodeDecodeError:
        raise ValueError(f"--celery-sep {text!r}: bad escape") from None
    if not sep:
        raise ValueError("--celery-sep must not be empty")
    return sep


def celery_config(args: Any, rq_sampled: bool = True) -> CeleryConfig | None:
    """The ``CeleryConfig`` of parsed ``args``, None without a Celery broker; ``ValueError`` when wrong.

    Celery's queues are ``--celery-queues``; when RQ is not sampled, ``--queues`` names them too.
    """
    url = (args.celery_broker or "").strip()
    if not url:
        return None
    scheme = urlsplit(url).scheme
    named = args.celery_queues or ("" if rq_sampled else args.queues) or ""
    queues = [name.strip() for name in named.split(",") if name.strip()] or None
    if scheme in ("redis", "rediss", "unix"):
        layout = KombuLayout(args.celery_keyprefix or "", _sep(args.celery_sep), _steps(args.celery_priority_steps))
        return CeleryConfig(url, "redis", queues, layout, None)
    if scheme in ("amqp", "amqps", "pyamqp"):
        if not args.rabbitmq_api:
            raise ValueError("--celery-broker amqp://… needs --rabbitmq-api http://user:password@host:15672")
        return CeleryConfig(url, "rabbitmq", queues, KombuLayout(), api_from_urls(args.rabbitmq_api, url))
    raise ValueError(f"--celery-broker {scheme or url!r}: only redis:// and amqp:// brokers are supported")
