"""Every request is named: the answer echoes its id, its command and events carry it, every log
line written while handling it names it, and one access line records it."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from oms.domain.access import Role, split_key
from oms.logs import ContextFilter, formatter
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api

CROSSING = {**GOOD, "account_id": "a1", "price": "100.10", "client_order_id": "cross-1"}
RESTING = {**GOOD, "account_id": "a1", "price": "95.00", "client_order_id": "rest-1"}


class Lines:
    """What the root logger wrote, as ``oms serve`` writes it in JSON."""

    def __init__(self) -> None:
        self.stream = io.StringIO()

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.stream.getvalue().splitlines()]

    def of(self, logger: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r["logger"] == logger]


@pytest.fixture
def lines() -> Iterator[Lines]:
    captured = Lines()
    handler = logging.StreamHandler(captured.stream)
    handler.setFormatter(formatter("json"))
    handler.addFilter(ContextFilter("test-replica"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield captured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def _events(api: Api, order_id: str) -> list[dict[str, Any]]:
    history = await (await api.client.get(f"/api/orders/{order_id}/events")).json()
    events: list[dict[str, Any]] = history["events"]
    return events


async def test_request_when_it_names_its_id_then_the_answer_echoes_it(api: Api) -> None:
    response = await api.client.get("/api/instruments", headers={"X-Request-ID": "cli-1"})

    assert response.status == 200
    assert response.headers["X-Request-ID"] == "cli-1"


@pytest.mark.parametrize("given", [None, "has a space", "x" * 200], ids=["none", "unsafe", "long"])
async def test_request_when_its_id_is_missing_or_unsafe_then_a_new_one_is_echoed(
    api: Api, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}

    response = await api.client.get("/api/instruments", headers=headers)

    echoed = response.headers["X-Request-ID"]
    assert echoed != given
    assert len(echoed) == 32


async def test_problem_answer_when_refused_then_it_names_the_request_too(api: Api) -> None:
    response = await api.client.get("/api/orders/nope", headers={"X-Request-ID": "cli-404"})

    assert response.status == 404
    assert response.headers["X-Request-ID"] == "cli-404"
    assert (await response.json())["code"] == "NOT_FOUND"


async def test_place_when_it_names_a_request_then_the_events_it_causes_carry_it(api: Api) -> None:
    response = await api.client.post(
        "/api/orders", json=CROSSING, headers={"X-Request-ID": "place-req-1"}
    )
    order_id = (await response.json())["order_id"]
    await api.settle()

    events = await _events(api, order_id)

    assert [(e["type"], e["request_id"]) for e in events] == [
        ("OrderPlaced", "place-req-1"),
        ("OrderAccepted", "place-req-1"),
        ("OrderFilled", None),  # the venue's doing, not a request's
        ("OrderSettled", None),
    ]


async def test_cancel_when_it_names_a_request_then_the_cancelled_event_carries_it(
    api: Api,
) -> None:
    placed = await api.client.post(
        "/api/orders", json=RESTING, headers={"X-Request-ID": "place-req-2"}
    )
    order_id = (await placed.json())["order_id"]
    await api.settle()

    cancel = await api.client.delete(
        f"/api/orders/{order_id}", headers={"X-Request-ID": "cancel-req-2"}
    )
    await api.settle()

    assert cancel.status == 202
    events = await _events(api, order_id)
    assert [(e["type"], e["request_id"]) for e in events] == [
        ("OrderPlaced", "place-req-2"),
        ("OrderAccepted", "place-req-2"),
        ("OrderCancelled", "cancel-req-2"),
    ]
    assert api.bus.recent[-1].request_id == "cancel-req-2"


async def test_place_when_its_risk_rejects_then_the_rejection_carries_the_request(
    api: Api,
) -> None:
    too_big = {**CROSSING, "client_order_id": "big-1", "quantity": "100000"}

    response = await api.client.post(
        "/api/orders", json=too_big, headers={"X-Request-ID": "place-req-3"}
    )
    await api.settle()

    events = await _events(api, (await response.json())["order_id"])
    assert events[-1]["type"] == "OrderRejected"
    assert events[-1]["reason"] == "INSUFFICIENT_BUYING_POWER"
    assert events[-1]["request_id"] == "place-req-3"


async def test_access_log_when_a_request_is_answered_then_one_line_names_it(
    api: Api, lines: Lines
) -> None:
    token = api.keys.token(Role.TRADER, ("a1",))
    key_id, secret = split_key(token) or ("", "")
    response = await api.client.post(
        "/api/orders?account_id=a1",
        json=CROSSING,
        headers={"X-Request-ID": "place-req-4", "Authorization": f"Bearer {token}"},
    )

    (access,) = lines.of("oms.access")
    assert response.status == 202
    assert access["request_id"] == "place-req-4"
    assert (access["method"], access["path"], access["status"]) == ("POST", "/api/orders", 202)
    assert access["duration_ms"] >= 0
    assert access["key_id"] == key_id
    assert access["account_id"] == "a1"
    assert access["order_id"] == (await response.json())["order_id"]
    assert access["replica"] == "test-replica"
    assert secret not in lines.stream.getvalue()
    assert "account_id=a1" not in access["path"]  # the query is never logged


async def test_log_line_when_written_while_handling_a_request_then_it_names_the_request(
    api: Api, lines: Lines
) -> None:
    response = await api.client.post(
        "/api/risk/kill-switch",
        json={"state": "HALTED", "account_id": "a1"},
        headers={"X-Request-ID": "halt-req-1"},
    )

    (switched,) = [r for r in lines.records() if r["msg"].startswith("kill switch set to")]
    assert response.status == 200
    assert switched["level"] == "WARNING"
    assert switched["msg"].startswith("kill switch set to HALTED for account a1 by key:")
    assert (switched["request_id"], switched["account_id"]) == ("halt-req-1", "a1")


async def test_requests_when_one_follows_another_then_the_second_carries_none_of_the_first(
    api: Api, lines: Lines
) -> None:
    await api.client.post("/api/orders", json=CROSSING, headers={"X-Request-ID": "first"})
    await api.client.get("/api/instruments", headers={"X-Request-ID": "second"})

    first, second = lines.of("oms.access")
    assert first["request_id"] == "first"
    assert "order_id" in first
    assert second["request_id"] == "second"
    assert "order_id" not in second
    assert "account_id" not in second
