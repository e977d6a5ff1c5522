"""The repeat filter keeps an outage's log to a line per kind per window, with a count."""

from __future__ import annotations

import logging

from oms.logs import RepeatFilter


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
