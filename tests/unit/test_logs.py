"""Log lines: JSON or text with their correlation ids, and an outage kept to a line per kind per
window with a count."""

from __future__ import annotations

import io
import json
import logging

from oms import correlation
from oms.config import Settings
from oms.logs import (
    ACCESS_LOGGER,
    UNTHROTTLED,
    ContextFilter,
    RepeatFilter,
    configure,
    formatter,
)

_GATHERED = ("_srcfile", "logThreads", "logProcesses", "logMultiprocessing")


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _record(msg: str, *args: object, level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord("aiokafka", level, __file__, 1, msg, args, None)


def test_filter_when_a_record_repeats_within_the_window_then_only_the_first_passes() -> None:
    clock = Clock()
    repeats = RepeatFilter(10.0, clock=clock)

    passed = [repeats.filter(_record("Unable connect to node %s", n)) for n in range(1000)]

    assert passed.count(True) == 1
    assert passed[0] is True


def test_filter_when_the_window_ends_then_the_next_record_says_how_many_were_dropped() -> None:
    clock = Clock()
    repeats = RepeatFilter(10.0, clock=clock)
    for _ in range(5):
        repeats.filter(_record("Unable connect to node %s", 1))
    clock.now = 11.0

    record = _record("Unable connect to node %s", 1)
    passed = repeats.filter(record)

    assert passed is True
    assert record.getMessage() == "Unable connect to node 1 [repeated 4 more times in 11s]"


def test_filter_when_kinds_differ_then_each_passes_once() -> None:
    repeats = RepeatFilter(10.0, clock=Clock())

    first = repeats.filter(_record("redis down"))
    other_text = repeats.filter(_record("kafka down"))
    other_level = repeats.filter(_record("redis down", level=logging.WARNING))

    assert (first, other_text, other_level) == (True, True, True)


def test_filter_when_more_kinds_than_it_keeps_then_the_oldest_is_forgotten() -> None:
    repeats = RepeatFilter(10.0, max_kinds=2, clock=Clock())
    repeats.filter(_record("a"))
    repeats.filter(_record("b"))
    repeats.filter(_record("c"))

    assert repeats.filter(_record("a")) is True
    assert repeats.filter(_record("c")) is False


def test_filter_when_the_record_is_an_access_line_then_never_dropped() -> None:
    repeats = RepeatFilter(10.0, clock=Clock())
    lines = [logging.LogRecord(ACCESS_LOGGER, logging.INFO, __file__, 1, "%s", ("GET",), None)]
    lines *= 3

    assert [repeats.filter(line) for line in lines] == [True, True, True]


def test_filter_when_an_unthrottled_record_repeats_then_every_one_passes() -> None:
    repeats = RepeatFilter(10.0, clock=Clock())
    assigned = []
    for n in range(3):  # three rebalances seconds apart: each assignment is news
        record = _record("partitions assigned: %s", [n], level=logging.INFO)
        record.__dict__.update(UNTHROTTLED)
        assigned.append(record)

    assert [repeats.filter(record) for record in assigned] == [True, True, True]


def _emit(log_format: str, *, window_s: float = 10.0, clock: Clock | None = None) -> Emitter:
    return Emitter(log_format, window_s, clock or Clock())


class Emitter:
    """A logger wired as ``configure`` wires the root one, writing to a string."""

    def __init__(self, log_format: str, window_s: float, clock: Clock) -> None:
        self.stream = io.StringIO()
        handler = logging.StreamHandler(self.stream)
        handler.setFormatter(formatter(log_format))
        handler.addFilter(RepeatFilter(window_s, clock=clock))
        handler.addFilter(ContextFilter("replica-1"))
        self.logger = logging.getLogger(f"oms.test.{log_format}.{id(self)}")
        self.logger.handlers[:] = [handler]
        self.logger.propagate = False
        self.logger.setLevel(logging.INFO)

    def lines(self) -> list[str]:
        return self.stream.getvalue().splitlines()


def test_json_when_logged_in_a_request_context_then_one_object_with_its_ids() -> None:
    emitter = _emit("json")

    with correlation.scope(request_id="req-1", order_id="o-1"):
        emitter.logger.warning("order %s refused", "o-1", extra={"account_id": "a-1"})

    (line,) = emitter.lines()
    record = json.loads(line)
    assert list(record)[:4] == ["ts", "level", "logger", "msg"]
    assert record["level"] == "WARNING"
    assert record["logger"] == emitter.logger.name
    assert record["msg"] == "order o-1 refused"
    assert record["ts"].endswith("+00:00")
    assert record["replica"] == "replica-1"
    assert (record["request_id"], record["order_id"], record["account_id"]) == (
        "req-1", "o-1", "a-1",
    )  # fmt: skip
    assert "command_id" not in record  # only the ids that are known


def test_json_when_an_exception_is_logged_then_it_stays_one_line() -> None:
    emitter = _emit("json")

    try:
        int("boom")
    except ValueError:
        emitter.logger.exception("failed")

    (line,) = emitter.lines()
    assert "ValueError: invalid literal" in json.loads(line)["exc_info"]


def test_json_when_repeats_were_dropped_then_the_next_line_counts_them() -> None:
    clock = Clock()
    emitter = _emit("json", clock=clock)
    for _ in range(4):
        emitter.logger.error("Unable connect to node %s", 1)
    clock.now = 11.0

    emitter.logger.error("Unable connect to node %s", 1)

    first, last = (json.loads(line) for line in emitter.lines())
    assert "repeated" not in first
    assert last["repeated"] == 3
    assert last["msg"] == "Unable connect to node 1 [repeated 3 more times in 11s]"


def test_text_when_logged_in_a_request_context_then_the_ids_end_the_line() -> None:
    emitter = _emit("text")

    with correlation.scope(request_id="req-1", command_id="place:o-1"):
        emitter.logger.info("placed")
    emitter.logger.info("outside")

    inside, outside = emitter.lines()
    assert inside.endswith(
        " INFO " + emitter.logger.name + " placed [request_id=req-1 command_id=place:o-1]"
    )
    assert outside.endswith(" outside")


def test_configure_when_the_format_is_json_then_the_root_writes_json() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    gathered = [(name, getattr(logging, name)) for name in _GATHERED]
    try:
        configure(Settings(log_format="json", replica="r-9"))
        handler = root.handlers[0]
        record = logging.LogRecord("oms.x", logging.INFO, __file__, 1, "hello", None, None)
        for step in handler.filters:
            assert step.filter(record)
        line = json.loads(handler.format(record))
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        for name, value in gathered:  # what configure turns off for the whole process
            setattr(logging, name, value)

    assert (line["msg"], line["replica"]) == ("hello", "r-9")
