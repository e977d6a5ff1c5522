"""Accounts, risk, instruments and market data over HTTP on a real engine."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import orjson
import pytest
from pymongo.errors import ServerSelectionTimeoutError

from oms.api.problems import PROBLEM_CONTENT_TYPE
from oms.codec import limits_from_dict
from oms.domain.commands import OpenAccount, SetTradingState
from oms.domain.limits import RiskLimits, TradingState
from oms.engine.ports import AccountRecord
from oms.stream.codecs import LIMITS_REPLACED, RiskEventType
from tests.malformed_orders import GOOD
from tests.unit.api.conftest import Api
from tests.unit.engine_helpers import tick


async def test_instruments_when_listed_then_show_their_grids(api: Api) -> None:
    instruments = await (await api.client.get("/api/instruments")).json()

    btc = next(i for i in instruments if i["symbol"] == "BTC-USD")
    assert btc == {
        "symbol": "BTC-USD",
        "base": "BTC",
        "quote": "USD",
        "tick_size": "0.01",
        "lot_size": "0.0001",
        "status": "TRADING",
    }


async def test_open_account_when_opened_twice_then_201_then_409_and_reads_back(api: Api) -> None:
    body = {
        "account_id": "new-1",
        "balances": {"USD": "1000.50", "BTC": "0"},
        "limits": {"max_order_notional": "5000", "velocity_window_s": 60,
                   "max_orders_per_window": 10},
    }  # fmt: skip

    created = await api.client.post("/api/accounts", json=body)
    again = await api.client.post("/api/accounts", json=body)
    read = await api.client.get("/api/accounts/new-1")

    assert created.status == 201
    assert again.status == 409
    assert again.content_type == PROBLEM_CONTENT_TYPE
    assert (await again.json())["code"] == "ACCOUNT_EXISTS"
    account = await read.json()
    assert account["balances"]["USD"] == {
        "available": "1000.50",
        "reserved": "0",
        "total": "1000.50",
    }
    assert account["limits"]["max_order_notional"] == "5000"
    assert account["limits"]["max_orders_per_window"] == 10
    assert account["trading_state"] == "ACTIVE"
    assert account["pnl"] == {"realized": "0", "unrealized": "0", "total": "0"}
    # announced to the replica that owns the account: when opened, and again on the retry
    opened = OpenAccount("new-1", {"USD": Decimal("1000.50"), "BTC": Decimal("0")},
                         RiskLimits(max_order_notional=Decimal("5000"), velocity_window_s=60.0,
                                    max_orders_per_window=10))  # fmt: skip
    assert api.bus.account_changes == [opened, opened]


async def test_open_account_when_amounts_are_numbers_negative_or_unknown_then_422_naming_each(
    api: Api,
) -> None:
    response = await api.client.post(
        "/api/accounts",
        json={"account_id": "x", "balances": {"USD": 100, "BTC": "-1"}, "colour": "red",
              "limits": {"price_collar": 0.1, "nope": "1"}},
    )  # fmt: skip

    assert response.status == 422
    assert (await response.json())["code"] == "VALIDATION_FAILED"
    fields = {e["field"] for e in (await response.json())["errors"]}
    assert fields == {
        "balances.USD",
        "balances.BTC",
        "colour",
        "limits.price_collar",
        "limits.nope",
    }


async def test_account_reads_when_the_account_is_unknown_then_404(api: Api) -> None:
    for path in ("/api/accounts/ghost", "/api/risk/positions?account_id=ghost",
                 "/api/risk/limits?account_id=ghost"):  # fmt: skip
        response = await api.client.get(path)
        assert response.status == 404, path
        assert response.content_type == PROBLEM_CONTENT_TYPE
        assert (await response.json())["code"] == "NOT_FOUND", path


async def test_positions_when_an_order_filled_then_show_it_in_balances_and_reservations(
    api: Api,
) -> None:
    order = {**GOOD, "account_id": "a1", "price": "100.10"}
    await api.client.post("/api/orders", json=order)
    await api.settle()

    positions = await (await api.client.get("/api/risk/positions?account_id=a1")).json()

    assert positions["positions"]["BTC-USD"]["quantity"] == "0.5"
    assert positions["balances"]["BTC"]["available"] == "10.5"
    account = await (await api.client.get("/api/accounts/a1")).json()
    assert account["reservations"] == {}


async def test_validate_when_an_order_breaks_a_limit_then_answers_its_reason_and_sends_nothing(
    api: Api,
) -> None:
    fine = await api.client.post("/api/risk/validate", json={**GOOD, "account_id": "a1",
                                                             "price": "100.10"})  # fmt: skip
    too_far = await api.client.post("/api/risk/validate", json={**GOOD, "account_id": "a1",
                                                                "price": "200.00"})  # fmt: skip

    assert await fine.json() == {"accepted": True, "violations": []}
    verdict = await too_far.json()
    assert verdict["accepted"] is False
    assert [v["reason"] for v in verdict["violations"]] == ["PRICE_OUTSIDE_COLLAR"]
    assert api.bus.sent_count == 0


async def test_limits_when_replaced_then_read_back_and_applied(api: Api) -> None:
    put = await api.client.put("/api/risk/limits/a1", json={"max_order_quantity": "0.1"})
    got = await (await api.client.get("/api/risk/limits?account_id=a1")).json()
    refused = await api.client.post(
        "/api/risk/validate", json={**GOOD, "account_id": "a1", "price": "100.10"}
    )

    assert put.status == 200
    assert got["limits"]["max_order_quantity"] == "0.1"
    assert got["limits"]["price_collar"] is None  # PUT replaces: what is absent is off
    assert [v["reason"] for v in (await refused.json())["violations"]] == [
        "QUANTITY_EXCEEDS_MAX_PER_ORDER"
    ]
    missing = await api.client.put("/api/risk/limits/ghost", json={})
    assert missing.status == 404
    assert (await missing.json())["code"] == "NOT_FOUND"


async def test_kill_switch_when_one_account_is_halted_then_rejects_its_orders_until_resumed(
    api: Api,
) -> None:
    halted = await api.client.post(
        "/api/risk/kill-switch", json={"state": "HALTED", "account_id": "a1"}
    )
    await api.client.post("/api/orders", json={**GOOD, "account_id": "a1", "price": "100.10"})
    await api.settle()
    page = await (await api.client.get("/api/orders?account_id=a1")).json()

    assert await halted.json() == {"state": "HALTED", "account_id": "a1"}
    assert page["items"][0]["status"] == "REJECTED"
    assert page["items"][0]["reject_reason"].startswith("KILL_SWITCH_ACCOUNT")
    resumed = await api.client.post("/api/risk/kill-switch", json={"state": "ACTIVE"})
    assert (await resumed.json()) == {"state": "ACTIVE", "account_id": None}
    off = await api.client.post("/api/risk/kill-switch", json={"state": "OFF"})
    assert off.status == 422
    assert (await off.json())["code"] == "VALIDATION_FAILED"
    assert api.engine.account("a1").get(timeout=5).trading_state is TradingState.HALTED


async def test_kill_switch_when_changed_then_recorded_for_a_restart(api: Api) -> None:
    # Act
    await api.client.post("/api/risk/kill-switch", json={"state": "HALTED", "account_id": "a1"})
    await api.client.post("/api/risk/kill-switch", json={"state": "REDUCING"})
    missing = await api.client.post(
        "/api/risk/kill-switch", json={"state": "HALTED", "account_id": "ghost"}
    )

    # Assert: recorded, and announced to the owner (every replica, for the global switch)
    assert api.bus.account_changes == [
        SetTradingState(TradingState.HALTED, "a1"),
        SetTradingState(TradingState.REDUCING, None),
    ]
    recorded = await api.accounts.get("a1")
    assert recorded is not None
    assert recorded.trading_state is TradingState.HALTED
    assert await api.accounts.global_trading_state() is TradingState.REDUCING
    assert missing.status == 404
    assert (await missing.json())["code"] == "NOT_FOUND"
    assert await api.accounts.get("ghost") is None


async def test_market_data_when_a_symbol_has_ticked_then_answers_its_price_and_book(
    api: Api,
) -> None:
    price = await (await api.client.get("/api/market-data/prices/BTC-USD")).json()
    book = await (await api.client.get("/api/market-data/orderbook/BTC-USD?depth=1")).json()

    assert price["last_price"] == "100.00"
    assert price["best_bid"] == "100.00"
    assert price["best_ask"] == "100.10"
    assert price["time"].endswith("Z")
    assert book["bids"] == [{"price": "100.00", "quantity": "1"}]
    assert book["asks"] == [{"price": "100.10", "quantity": "1"}]
    unlisted = await api.client.get("/api/market-data/prices/DOGE-EUR")
    assert unlisted.status == 404
    assert (await unlisted.json())["code"] == "NOT_FOUND"
    not_ticked = await api.client.get("/api/market-data/prices/ETH-USD")
    assert not_ticked.status == 404
    assert (await not_ticked.json())["code"] == "NO_MARKET_DATA"
    bad = await api.client.get("/api/market-data/orderbook/BTC-USD?depth=0")
    assert bad.status == 422
    assert (await bad.json())["code"] == "INVALID_PARAMETERS"


async def test_market_data_websocket_when_subscribed_then_pushes_live_ticks(api: Api) -> None:
    async with api.client.ws_connect("/ws/market-data?symbols=ETH-USD") as ws:
        hello = orjson.loads((await ws.receive()).data)
        api.engine.on_tick(tick("ETH-USD", bid="2000.00", ask="2000.10", ts=1001.0))

        message = orjson.loads((await asyncio.wait_for(ws.receive(), 5)).data)

    assert hello == {"type": "subscribed", "symbols": ["ETH-USD"]}
    assert message["type"] == "tick"
    assert message["symbol"] == "ETH-USD"
    assert message["best_ask"] == "2000.10"


@pytest.mark.parametrize("account_id", ["VENUE", "FEES", "venue"])
async def test_open_account_when_the_id_is_reserved_then_422_and_nothing_is_stored(
    api: Api, account_id: str
) -> None:
    # Act
    response = await api.client.post(
        "/api/accounts", json={"account_id": account_id, "balances": {"USD": "100"}}
    )

    # Assert: a field error with its reason code; not recorded, not opened, not announced
    assert response.status == 422
    assert response.content_type == PROBLEM_CONTENT_TYPE
    problem = await response.json()
    assert problem["code"] == "VALIDATION_FAILED"
    assert [(e["field"], e["code"]) for e in problem["errors"]] == [
        ("account_id", "RESERVED_ACCOUNT_ID")
    ]
    assert await api.accounts.get(account_id) is None
    assert not api.engine.risk_book.has_account(account_id)
    assert api.bus.account_changes == []


async def test_open_account_when_the_id_breaks_the_grammar_then_422_with_its_code(
    api: Api,
) -> None:
    response = await api.client.post("/api/accounts", json={"account_id": "a b"})

    assert response.status == 422
    errors = (await response.json())["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("account_id", "INVALID_ACCOUNT_ID")]
    assert await api.accounts.get("a b") is None


async def test_kill_switch_when_the_account_is_reserved_then_422_and_nothing_changes(
    api: Api,
) -> None:
    response = await api.client.post(
        "/api/risk/kill-switch", json={"state": "HALTED", "account_id": "FEES"}
    )

    assert response.status == 422
    errors = (await response.json())["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [("account_id", "RESERVED_ACCOUNT_ID")]
    assert api.bus.account_changes == []


async def test_kill_switch_when_changed_then_each_recorded_change_is_a_risk_event(
    api: Api,
) -> None:
    # Act
    await api.client.post("/api/risk/kill-switch", json={"state": "HALTED", "account_id": "a1"})
    await api.client.post("/api/risk/kill-switch", json={"state": "REDUCING"})
    missing = await api.client.post(
        "/api/risk/kill-switch", json={"state": "HALTED", "account_id": "ghost"}
    )
    invalid = await api.client.post("/api/risk/kill-switch", json={"state": "OFF"})

    # Assert: one event per recorded change; none for what was refused
    assert [(e.type, e.account_id, e.reason) for e in api.risk_events.events] == [
        (RiskEventType.KILL_SWITCH, "a1", "HALTED"),
        (RiskEventType.KILL_SWITCH, None, "REDUCING"),
    ]
    assert (missing.status, (await missing.json())["code"]) == (404, "NOT_FOUND")
    assert (invalid.status, (await invalid.json())["code"]) == (422, "VALIDATION_FAILED")


async def test_limits_when_replaced_then_a_risk_event_carries_the_new_limits(api: Api) -> None:
    # Act
    put = await api.client.put("/api/risk/limits/a1", json={"max_order_quantity": "0.1"})
    missing = await api.client.put("/api/risk/limits/ghost", json={})

    # Assert
    assert put.status == 200
    [event] = api.risk_events.events
    assert (event.type, event.account_id, event.reason) == (
        RiskEventType.LIMITS, "a1", LIMITS_REPLACED,
    )  # fmt: skip
    assert limits_from_dict(orjson.loads(event.detail)) == RiskLimits(
        max_order_quantity=Decimal("0.1")
    )
    assert (missing.status, (await missing.json())["code"]) == (404, "NOT_FOUND")


async def test_kill_switch_when_the_store_does_not_record_it_then_no_risk_event(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Arrange
    async def down(*_: object) -> None:
        raise ServerSelectionTimeoutError("127.0.0.1:27027: [Errno 111] Connection refused")

    monkeypatch.setattr(api.accounts, "set_trading_state", down)

    # Act
    response = await api.client.post(
        "/api/risk/kill-switch", json={"state": "HALTED", "account_id": "a1"}
    )

    # Assert
    assert response.status == 503
    assert (await response.json())["code"] == "DEPENDENCY_UNAVAILABLE"
    assert api.risk_events.events == []
    assert api.bus.account_changes == []


async def test_account_read_when_recorded_but_not_yet_announced_here_then_its_record_answers(
    api: Api,
) -> None:
    # Arrange: opened on another replica (recorded, halted since), its OpenAccount not read yet
    record = AccountRecord("late", {"USD": Decimal("5")}, trading_state=TradingState.HALTED)
    await api.accounts.open(record)

    # Act
    response = await api.client.get("/api/accounts/late")

    # Assert: its opening state, not a 404; and this replica knows it from now on
    body = await response.json()
    assert response.status == 200, body
    assert body["balances"]["USD"]["total"] == "5"
    assert body["trading_state"] == "HALTED"
    assert "late" in api.engine.risk_book.account_ids()


@pytest.mark.parametrize("symbol", ["DOGE-USD", "\x00\x1b", "a.b", "$where"])
async def test_open_account_when_a_per_symbol_limit_names_no_listed_instrument_then_422(
    api: Api, symbol: str
) -> None:
    # Act: schemathesis once sent such a key; MongoDB refused the document (a 500)
    response = await api.client.post(
        "/api/accounts",
        json={"account_id": "per-sym", "balances": {"USD": "100"},
              "limits": {"symbol_max_order_quantity": {symbol: "1", "BTC-USD": "2"}}},
    )  # fmt: skip

    # Assert: named with its reason code; nothing recorded or announced
    assert response.status == 422
    errors = (await response.json())["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        ("limits.symbol_max_order_quantity", "UNKNOWN_INSTRUMENT")
    ]
    assert await api.accounts.get("per-sym") is None
    assert api.bus.account_changes == []


async def test_limits_when_a_per_symbol_limit_names_no_listed_instrument_then_422_unchanged(
    api: Api,
) -> None:
    # Act
    response = await api.client.put(
        "/api/risk/limits/a1", json={"symbol_max_position": {"NOPE-USD": "1"}}
    )

    # Assert
    assert response.status == 422
    errors = (await response.json())["errors"]
    assert [(e["field"], e["code"]) for e in errors] == [
        ("symbol_max_position", "UNKNOWN_INSTRUMENT")
    ]
    assert api.bus.account_changes == []
