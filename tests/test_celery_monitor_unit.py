"""The Celery monitor's pure parts: options, a message's moment, the judge, the ACL rules, the report's table."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from pipeline import settings
from pipeline.lines.clock import LineClock, format_line
from pipeline.monitor import celery_acl
from pipeline.monitor.celery_judge import judge_celery, judge_node
from pipeline.monitor.celery_redis import CeleryQueueStats, KombuLayout, message_moment
from pipeline.monitor.celery_write import celery_fields
from pipeline.monitor.judge import Thresholds
from pipeline.monitor.options import parse_args
from pipeline.monitor.rabbitmq import NodeStats, RabbitSample, api_from_urls, vhost_of
from pipeline.report.queues import QueueLines
from pipeline.report.render import _queue_cells

pytestmark = [pytest.mark.unit]


def test_without_a_celery_broker_the_url_keeps_its_default() -> None:
    config = parse_args([], {})
    assert (config.url, config.celery) == (settings.REDIS_URL.default, None)


def test_a_celery_broker_alone_samples_only_celery() -> None:
    config = parse_args(["--celery-broker", "redis://r:6379/1"], {})
    assert config.url is None and config.celery is not None and config.celery.broker == "redis"
    environ = {settings.CELERY_BROKER.variable: "redis://r:6379/1"}
    assert parse_args([], environ).url is None
    assert parse_args(["--queues", "a,b"], environ).celery.queues == ["a", "b"]  # type: ignore[union-attr]
    both = parse_args(["--url", "redis://q", "--queues", "a"], environ)
    assert both.queues == ["a"] and both.celery.queues is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("argv", "environ"),
    [(["--url", "redis://q:6379/0"], {}), ([], {settings.REDIS_URL.variable: "redis://q:6379/0"})],
)
def test_with_rqs_redis_named_both_are_sampled(argv: list[str], environ: dict[str, str]) -> None:
    config = parse_args([*argv, "--celery-broker", "redis://r:6379/1"], environ)
    assert config.url == "redis://q:6379/0" and config.celery is not None


def test_the_transport_options_and_rabbitmqs_api() -> None:
    args = [
        "--celery-broker",
        "redis://r",
        "--celery-sep",
        ":",
        "--celery-priority-steps",
        "0,1,2",
        "--celery-keyprefix",
        "p:",
    ]
    layout = parse_args(args, {}).celery.layout  # type: ignore[union-attr]
    assert layout == KombuLayout("p:", ":", (0, 1, 2))
    assert layout.lists("q") == ["p:q", "p:q:1", "p:q:2"]
    assert KombuLayout().lists("celery") == ["celery", "celery\x06\x163", "celery\x06\x166", "celery\x06\x169"]
    rabbit = parse_args(["--celery-broker", "amqp://u:p@mq:5672/prod", "--rabbitmq-api", "http://m:s@mq:15672"], {})
    api = rabbit.celery.api  # type: ignore[union-attr]
    assert api is not None and (api.base, api.username, api.password, api.vhost) == (
        "http://mq:15672",
        "m",
        "s",
        "prod",
    )
    assert api.label == "mq:15672" and api.amqp == ("mq", 5672)


@pytest.mark.parametrize(
    "argv",
    [
        ["--celery-broker", "amqp://mq//"],  # no --rabbitmq-api
        ["--celery-broker", "kafka://k"],
        ["--celery-broker", "redis://r", "--celery-priority-steps", "3,6"],
        ["--celery-broker", "redis://r", "--celery-priority-steps", "a"],
        ["--celery-broker", "amqp://mq//", "--rabbitmq-api", "mq:15672"],
    ],
)
def test_bad_celery_options_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        parse_args(argv, {})
    assert exit_.value.code == 2 and len(capsys.readouterr().err.strip().splitlines()[-1:]) == 1


def test_vhosts_as_kombu_reads_them() -> None:
    assert [vhost_of(url) for url in ("amqp://h//", "amqp://h", "amqp://h/", "amqp://h/prod", "amqp://h/a%2Fb")] == [
        "/",
        "/",
        "/",
        "prod",
        "a/b",
    ]
    assert api_from_urls("http://h:1", "amqp://h//").username == "guest"


def _message(**headers: object) -> bytes:
    return json.dumps({"body": "", "headers": headers, "properties": {}}).encode()


def test_a_messages_moment() -> None:
    now = time.time()
    assert message_moment(_message(task_time_published_at=now - 10, eta=None), now) == (now - 10, None)
    past = (datetime.now(UTC) - timedelta(seconds=5)).isoformat()
    assert message_moment(_message(task_time_published_at=now - 60, eta=past), now)[0] == pytest.approx(now - 5, abs=1)
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert message_moment(_message(task_time_published_at=now - 60, eta=future), now) == (now, None)
    moment, why = message_moment(_message(eta=None), now)
    assert moment is None and "no task_time_published_at header" in (why or "")
    assert message_moment(b"not json", now)[0] is None
    assert message_moment(_message(task_time_published_at="soon"), now)[0] is None


def test_node_thresholds_and_alarms() -> None:
    thresholds = Thresholds()
    node = NodeStats("rabbit@a", True, 79, 100, False, False)
    assert judge_node(node, thresholds).status == "ok"
    assert judge_node(NodeStats("a", True, 80, 100, False, False), thresholds).status == "warn"
    assert judge_node(NodeStats("a", True, 90, 100, False, False), thresholds).status == "critical"
    blocked = judge_node(NodeStats("a", True, 10, 100, False, True), thresholds)
    assert blocked.status == "critical" and blocked.reason == "disk alarm: publishers are blocked"
    assert judge_node(NodeStats("a", True, 101, 100, True, False), thresholds).reason.startswith("memory alarm")
    assert judge_node(NodeStats("a", False, 0, 0, False, False), thresholds).status == "critical"


def test_celery_lines_through_the_report(tmp_path: Path) -> None:
    queue = CeleryQueueStats("celery", 12, 40.0, 0, 0)
    sample = RabbitSample(time.time(), 0.01, [NodeStats("rabbit@a", True, 1, 100, False, False)], [queue])
    judgement = judge_celery(sample, None, Thresholds())
    fields = celery_fields(sample, judgement, "m", "ignored")
    assert fields[1].startswith("Monitor: m Status: critical System: celery Broker: rabbitmq Queue: celery Depth: 12 ")
    reader = QueueLines(LineClock())
    clock = LineClock()
    for text in fields:
        assert reader.offer(format_line(sample.taken_at, text, clock).encode())
    [state] = reader.rows()
    assert (state.system, state.broker, state.workers, state.depth) == ("celery", "rabbitmq", 0, 12)
    assert _queue_cells(state)[:2] == ["celery (celery on rabbitmq)", "critical"]


def test_the_acl_rules() -> None:
    assert celery_acl.rules()[:2] == ("resetkeys", "%R~*")
    narrow = celery_acl.key_rules(KombuLayout("p*:", ":"), ["q"])
    assert narrow == ("resetkeys", "%R~p\\*:_kombu.binding.*", "%R~p\\*:unacked", "%R~p\\*:q", "%R~p\\*:q:*")
    assert celery_acl.acl_line("pw").startswith("user celery-monitor on >pw resetkeys %R~* ")
