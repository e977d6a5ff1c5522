"""Request ids: taken from the caller when sane, made otherwise, and kept in the logging context."""

from __future__ import annotations

import asyncio

import pytest

from oms import correlation


def test_from_caller_when_the_id_is_sane_then_it_is_kept() -> None:
    assert correlation.from_caller("gw-42:retry/1") == "gw-42:retry/1"


@pytest.mark.parametrize(
    "given",
    [None, "", "has space", "line\nbreak", "x" * 129, "caf\u00e9"],
    ids=["none", "empty", "space", "newline", "too long", "not ascii"],
)
def test_from_caller_when_the_id_is_missing_or_unsafe_then_a_new_one(given: str | None) -> None:
    made = correlation.from_caller(given)

    assert made != given
    assert len(made) == 32
    assert set(made) <= set("0123456789abcdef")
    assert correlation.sane(made) == made


def test_new_request_id_when_made_twice_then_the_two_differ() -> None:
    assert correlation.new_request_id() != correlation.new_request_id()


def test_from_record_when_it_has_a_request_id_header_then_that_one() -> None:
    headers = [("trace", b"t-1"), ("request_id", b"gw-7")]

    assert correlation.from_record(headers, "orders", 3, 41) == "gw-7"


@pytest.mark.parametrize(
    "headers",
    [[], [("request_id", b"bad id")], [("request_id", b"\xff")], [("request_id", None)]],
    ids=["none", "unsafe", "not ascii", "null"],
)
def test_from_record_when_it_has_no_usable_header_then_named_after_the_record(
    headers: list[tuple[str, bytes]],
) -> None:
    assert correlation.from_record(headers, "orders-x", 3, 41) == "orders-x/3/41"


def test_kafka_headers_when_a_command_has_no_request_id_then_none() -> None:
    assert correlation.kafka_headers(None) == []
    assert correlation.kafka_headers("r-1") == [("request_id", b"r-1")]


def test_scope_when_left_then_the_fields_are_as_before() -> None:
    with correlation.scope(request_id="r-1", order_id="o-1"):
        correlation.bind(account_id="a-1")
        inside = correlation.current()
    after = correlation.current()

    assert inside == {"request_id": "r-1", "order_id": "o-1", "account_id": "a-1"}
    assert after == {}


async def test_bind_when_two_tasks_run_then_each_keeps_its_own_fields() -> None:
    seen: dict[str, dict[str, str]] = {}

    async def handle(request_id: str) -> None:
        with correlation.scope(request_id=request_id):
            await asyncio.sleep(0)
            correlation.bind(order_id=f"o-{request_id}")
            await asyncio.sleep(0)
            seen[request_id] = correlation.current()

    await asyncio.gather(handle("a"), handle("b"))

    assert seen == {
        "a": {"request_id": "a", "order_id": "o-a"},
        "b": {"request_id": "b", "order_id": "o-b"},
    }
