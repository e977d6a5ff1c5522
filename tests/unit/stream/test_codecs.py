"""The wire codecs: every message reads back as it was written, every bad record is refused
with its reason code."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
import pytest

from oms.api.ids import order_id_for
from oms.codec import limits_from_dict
from oms.domain.commands import (
    AmendOrder,
    ApplyFill,
    CancelAll,
    CancelOrder,
    OpenAccount,
    PlaceOrder,
    SetLimits,
    SetTradingState,
)
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    CancelReason,
    OrderAccepted,
    OrderCancelled,
    OrderEvent,
    OrderFilled,
    OrderPlaced,
    OrderRejected,
    OrderSettled,
)
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument, InstrumentStatus
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.order_ids import client_order_id_order
from oms.domain.reasons import RejectReason
from oms.marketdata import BookLevel, Tick
from oms.stream.codecs import (
    MAX_RECORD_BYTES,
    CommandDecoder,
    DecodeError,
    Reason,
    RiskEvent,
    RiskEventType,
    dead_letter_value,
    decode_event,
    decode_risk_event,
    decode_tick,
    encode_account_command,
    encode_command,
    encode_event,
    encode_risk_event,
    encode_tick,
    kill_switch_change,
    limits_change,
    rejection,
)
from tests.malformed_orders import GOOD, MALFORMED

INSTRUMENTS = {i.symbol: i for i in DEFAULT_INSTRUMENTS}
DECODER = CommandDecoder(INSTRUMENTS)
RECORD_TS = 1767225600.5

C1_ORDER_ID = client_order_id_order("acct-1", "c-1")
PLACE = PlaceOrder(
    command_id=f"place:{C1_ORDER_ID}",
    order_id=C1_ORDER_ID,
    client_order_id="c-1",
    account_id="acct-1",
    symbol="BTC-USD",
    side=Side.BUY,
    type=OrderType.LIMIT,
    quantity=Decimal("0.5000"),
    price=Decimal("30000.10"),
    time_in_force=TimeInForce.GTC,
    created_at=1767225600.25,
)


def _place(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "type": "PlaceOrder",
        "order_id": "o-1",
        "account_id": "acct-1",
        "symbol": "BTC-USD",
        "side": "BUY",
        "order_type": "LIMIT",
        "quantity": "0.5",
        "price": "30000.10",
    }
    for name, value in changes.items():
        if value is _ABSENT:
            body.pop(name, None)
        else:
            body[name] = value
    return orjson.dumps(body)


_ABSENT = object()


def _fill(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "execution_id": "x-1",
        "order_id": "o-1",
        "account_id": "acct-1",
        "quantity": "0.2",
        "price": "29999.5",
    }
    body.update(changes)
    return orjson.dumps({k: v for k, v in body.items() if v is not _ABSENT})


# -- round trips -------------------------------------------------------------------------------


def test_place_order_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    assert DECODER.order_command(encode_command(PLACE), RECORD_TS) == PLACE


def test_place_order_when_market_without_a_price_then_round_trips() -> None:
    market = replace(PLACE, type=OrderType.MARKET, price=None, time_in_force=TimeInForce.FOK)

    assert DECODER.order_command(encode_command(market), RECORD_TS) == market


def test_cancel_order_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    cancel = CancelOrder("cancel:o-1", "o-1", "acct-1", 1767225601.0)

    assert DECODER.order_command(encode_command(cancel), RECORD_TS) == cancel


def test_amend_order_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    amend = AmendOrder("amend:a-1", "o-1", "acct-1", 1767225601.5, Decimal("0.8"), None)

    assert DECODER.order_command(encode_command(amend), RECORD_TS) == amend


def test_cancel_all_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    cancel_all = CancelAll("all:1", "acct-1", 1767225602.0, "BTC-USD")

    assert DECODER.order_command(encode_command(cancel_all), RECORD_TS) == cancel_all


def test_place_when_stop_gtd_and_post_only_then_round_trips_exactly() -> None:
    stop = replace(
        PLACE, type=OrderType.STOP_LIMIT, stop_price=Decimal("30100.00"),
        time_in_force=TimeInForce.GTD, expire_at=RECORD_TS + 60,
    )  # fmt: skip
    post_only = replace(PLACE, post_only=True)

    for command in (stop, post_only):
        assert DECODER.order_command(encode_command(command), RECORD_TS) == command


def test_place_when_gtd_without_expire_at_then_refused_naming_the_field() -> None:
    record = orjson.loads(encode_command(replace(PLACE, time_in_force=TimeInForce.GTD)))

    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(orjson.dumps(record), RECORD_TS)

    assert refused.value.reason is Reason.INVALID_FIELD
    assert refused.value.field == "expire_at"


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "AmendOrder", "order_id": "o-1", "account_id": "a", "command_id": "c"},
         Reason.MISSING_FIELD),
        ({"type": "AmendOrder", "order_id": "o-1", "account_id": "a", "price": "1"},
         Reason.MISSING_FIELD),
        ({"type": "AmendOrder", "order_id": "o-1", "account_id": "a", "command_id": "c",
          "price": 1}, Reason.INVALID_AMOUNT),
        ({"type": "AmendOrder", "order_id": "o-1", "account_id": "a", "command_id": "c",
          "price": "1", "side": "BUY"}, Reason.UNKNOWN_FIELD),
    ],
    ids=["no terms", "no command id", "number price", "unknown field"],
)  # fmt: skip
def test_decode_amend_when_the_record_is_bad_then_refused_with_its_reason(
    record: dict[str, object], reason: Reason
) -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(orjson.dumps(record), RECORD_TS)

    assert refused.value.reason is reason


def test_decode_when_given_the_record_request_id_then_the_place_and_the_cancel_carry_it() -> None:
    cancel = CancelOrder("cancel:o-1", "o-1", "acct-1", 1767225601.0)

    place = DECODER.order_command(encode_command(PLACE), RECORD_TS, "req-7")
    cancelled = DECODER.order_command(encode_command(cancel), RECORD_TS, "req-8")

    assert place == replace(PLACE, request_id="req-7")
    assert cancelled == replace(cancel, request_id="req-8")


def test_encode_when_a_command_has_a_request_id_then_the_value_keeps_its_schema() -> None:
    """The request id travels in a record header (the bus's), never in the JSON value: other
    producers' records keep the schema they were written against."""
    value = orjson.loads(encode_command(replace(PLACE, request_id="req-7")))

    assert "request_id" not in value
    assert DECODER.order_command(orjson.dumps(value), RECORD_TS) == PLACE


def test_apply_fill_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    fill = ApplyFill("x-1", "o-1", "acct-1", Decimal("0.2"), Decimal("29999.50"), Decimal("0"), 5.0)

    assert DECODER.fill(encode_command(fill), RECORD_TS) == fill


def test_encode_command_when_it_carries_amounts_then_writes_decimal_strings() -> None:
    wire = orjson.loads(encode_command(PLACE))

    assert wire["quantity"] == "0.5000"
    assert wire["price"] == "30000.10"
    assert wire["type"] == "PlaceOrder"
    assert wire["order_type"] == "LIMIT"


def test_decode_place_when_minimal_then_takes_defaults_from_the_order_and_the_record() -> None:
    command = DECODER.order_command(_place(), RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert command.command_id == "place:o-1"
    assert command.client_order_id == "o-1"
    assert command.time_in_force is TimeInForce.GTC
    assert command.created_at == RECORD_TS


def test_place_when_only_a_client_order_id_then_its_id_is_the_one_rest_gives() -> None:
    record = _place(order_id=_ABSENT, client_order_id="c-7")

    command = DECODER.order_command(record, RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert command.order_id == client_order_id_order("acct-1", "c-7")
    assert command.order_id == order_id_for("acct-1", "c-7", "any-key")
    assert command.command_id == f"place:{command.order_id}"
    assert command.client_order_id == "c-7"


def test_place_when_the_order_id_is_the_derived_one_then_it_is_accepted() -> None:
    derived = client_order_id_order("acct-1", "c-7")

    command = DECODER.order_command(_place(order_id=derived, client_order_id="c-7"), RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert (command.order_id, command.client_order_id) == (derived, "c-7")


def test_place_when_the_order_id_disagrees_with_the_client_order_id_then_order_id_mismatch() -> (
    None
):
    record = _place(order_id="o-1", client_order_id="c-7")

    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(record, RECORD_TS)

    assert refused.value.reason is Reason.ORDER_ID_MISMATCH
    assert refused.value.code == "ORDER_ID_MISMATCH"
    assert refused.value.field == "order_id"
    assert client_order_id_order("acct-1", "c-7") in str(refused.value)


def test_place_when_the_client_order_id_is_the_order_id_then_the_producer_id_stands() -> None:
    # REST sends an order placed without a client order id this way (the id stands for both).
    command = DECODER.order_command(_place(order_id="o-9", client_order_id="o-9"), RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert (command.order_id, command.client_order_id) == ("o-9", "o-9")


def test_place_when_neither_order_id_nor_client_order_id_then_missing_field() -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(_place(order_id=_ABSENT), RECORD_TS)

    assert refused.value.reason is Reason.MISSING_FIELD
    assert refused.value.field == "order_id"


def test_decode_place_when_market_without_time_in_force_then_defaults_to_ioc() -> None:
    command = DECODER.order_command(_place(order_type="MARKET", price=_ABSENT), RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert command.time_in_force is TimeInForce.IOC
    assert command.price is None


def test_decode_cancel_and_fill_when_minimal_then_take_their_defaults() -> None:
    cancel = DECODER.order_command(
        orjson.dumps({"type": "CancelOrder", "order_id": "o-1", "account_id": "a"}), RECORD_TS
    )
    fill = DECODER.fill(_fill(), RECORD_TS)

    assert cancel == CancelOrder("cancel:o-1", "o-1", "a", RECORD_TS)
    assert fill.fee == Decimal(0)
    assert fill.executed_at == RECORD_TS


def test_tick_when_encoded_and_decoded_then_round_trips_exactly() -> None:
    tick = Tick(
        "BTC-USD",
        Decimal("30000.10"),
        Decimal("30000.00"),
        Decimal("30000.20"),
        (BookLevel(Decimal("30000.00"), Decimal("1.5")),),
        (BookLevel(Decimal("30000.20"), Decimal("0.25")),),
        1767225600.0,
    )

    assert decode_tick(encode_tick(tick), INSTRUMENTS) == tick


EVENTS: list[OrderEvent] = [
    OrderPlaced(
        "o-1", 1, "place:o-1", 1.0, "c-1", "acct-1", "BTC-USD", Side.SELL, OrderType.LIMIT,
        Decimal("0.5"), Decimal("30000.10"), TimeInForce.IOC,
    ),
    OrderPlaced(
        "o-2", 1, "place:o-2", 1.0, "c-2", "acct-1", "BTC-USD", Side.BUY, OrderType.MARKET,
        Decimal("0.5"), None, TimeInForce.FOK,
    ),
    OrderAccepted("o-1", 2, "place:o-1", 2.0, Decimal("30000.10")),
    OrderRejected("o-1", 2, "place:o-1", 2.0, RejectReason.INSUFFICIENT_BUYING_POWER, "needed=1, had=0"),
    OrderFilled("o-1", 3, "x-1", 3.0, Decimal("0.2"), Decimal("30000.10"), Decimal("0")),
    OrderCancelled("o-1", 4, "cancel:o-1", 4.0, CancelReason.REMAINDER),
    OrderSettled("o-1", 5, "settle:o-1", 5.0),
    OrderAccepted("o-3", 2, "place:o-3", 2.0, Decimal("30000.10"), "req-3"),
    OrderCancelled("o-3", 3, "cancel:x", 3.0, CancelReason.REQUESTED, "req-4"),
]  # fmt: skip


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: type(e).__name__)
def test_order_event_when_encoded_and_decoded_then_round_trips_with_its_account(
    event: OrderEvent,
) -> None:
    assert decode_event(encode_event(event, "acct-1")) == (event, "acct-1")


def test_risk_event_when_encoded_and_decoded_then_round_trips() -> None:
    rejected = OrderRejected("o-1", 2, "place:o-1", 2.0, RejectReason.KILL_SWITCH_GLOBAL, "")
    kill = RiskEvent(RiskEventType.KILL_SWITCH, None, "HALTED", "by admin", 9.0)

    assert decode_risk_event(encode_risk_event(rejection(rejected, "acct-1"))) == RiskEvent(
        RiskEventType.ORDER_REJECTED, "acct-1", RejectReason.KILL_SWITCH_GLOBAL, "", 2.0, "o-1"
    )
    assert decode_risk_event(encode_risk_event(kill)) == kill


def test_dead_letter_when_written_then_carries_the_reason_the_origin_and_the_bytes() -> None:
    letter = orjson.loads(
        dead_letter_value(
            reason="MALFORMED_JSON", detail="x", topic="orders", partition=3, offset=42,
            value=b"{oops", key=b"acct-1", timestamp=1.5,
        )
    )  # fmt: skip
    binary = orjson.loads(
        dead_letter_value(
            reason="MALFORMED_JSON", detail="x", topic="orders", partition=0, offset=0,
            value=b"\xff\xfe", key=None, timestamp=None,
        )
    )  # fmt: skip

    assert letter == {
        "reason": "MALFORMED_JSON", "detail": "x", "topic": "orders", "partition": 3,
        "offset": 42, "timestamp": 1.5, "key": "acct-1", "value": "{oops",
    }  # fmt: skip
    assert binary["value_b64"] == "//4="


def test_dead_letter_when_the_record_has_a_request_id_then_the_letter_names_it() -> None:
    letter = orjson.loads(
        dead_letter_value(
            reason="MALFORMED_JSON", detail="x", topic="orders", partition=3, offset=42,
            value=b"{oops", key=b"acct-1", timestamp=1.5, request_id="req-9",
        )
    )  # fmt: skip

    assert letter["request_id"] == "req-9"
    assert letter["reason"] == "MALFORMED_JSON"


# -- refusals ----------------------------------------------------------------------------------

ORDER_REFUSALS: list[tuple[str, bytes | None, Reason]] = [
    ("no value", None, Reason.MALFORMED_JSON),
    ("not json", b"{not json", Reason.MALFORMED_JSON),
    ("empty", b"", Reason.MALFORMED_JSON),
    ("too large", b'"' + b"x" * MAX_RECORD_BYTES + b'"', Reason.TOO_LARGE),
    ("a list", b"[1, 2]", Reason.NOT_AN_OBJECT),
    ("no type", orjson.dumps({"order_id": "o-1"}), Reason.UNKNOWN_COMMAND),
    ("unknown type", _place(type="ReplaceOrder"), Reason.UNKNOWN_COMMAND),
    ("lower-case type", _place(type="placeorder"), Reason.UNKNOWN_COMMAND),
    ("unknown field", _place(leverage="10"), Reason.UNKNOWN_FIELD),
    ("REST's type field", _place(order_type=_ABSENT, time_in_force="GTC"), Reason.MISSING_FIELD),
    ("missing order_id", _place(order_id=_ABSENT), Reason.MISSING_FIELD),
    ("missing account_id", _place(account_id=_ABSENT), Reason.MISSING_FIELD),
    ("missing symbol", _place(symbol=_ABSENT), Reason.MISSING_FIELD),
    ("missing side", _place(side=_ABSENT), Reason.MISSING_FIELD),
    ("missing quantity", _place(quantity=_ABSENT), Reason.MISSING_FIELD),
    ("null quantity", _place(quantity=None), Reason.MISSING_FIELD),
    ("bad order_id", _place(order_id="has space"), Reason.INVALID_FIELD),
    ("numeric account", _place(account_id=7), Reason.INVALID_FIELD),
    ("long id", _place(order_id="x" * 65), Reason.INVALID_FIELD),
    ("bool created_at", _place(created_at=True), Reason.INVALID_FIELD),
    ("negative created_at", _place(created_at=-1), Reason.INVALID_FIELD),
    ("text created_at", _place(created_at="now"), Reason.INVALID_FIELD),
    ("lower-case side", _place(side="buy"), Reason.INVALID_ENUM),
    ("unknown order type", _place(order_type="STOP"), Reason.INVALID_ENUM),
    ("unknown tif", _place(time_in_force="DAY"), Reason.INVALID_ENUM),
    ("number quantity", _place(quantity=0.5), Reason.INVALID_AMOUNT),
    ("integer quantity", _place(quantity=1), Reason.INVALID_AMOUNT),
    ("bool quantity", _place(quantity=True), Reason.INVALID_AMOUNT),
    ("zero quantity", _place(quantity="0"), Reason.INVALID_AMOUNT),
    ("negative quantity", _place(quantity="-1"), Reason.INVALID_AMOUNT),
    ("NaN quantity", _place(quantity="NaN"), Reason.INVALID_AMOUNT),
    ("infinite quantity", _place(quantity="Infinity"), Reason.INVALID_AMOUNT),
    ("exponent quantity", _place(quantity="1e3"), Reason.INVALID_AMOUNT),
    ("huge quantity", _place(quantity="1" * 16), Reason.INVALID_AMOUNT),
    ("number price", _place(price=30000.1), Reason.INVALID_AMOUNT),
    ("zero price", _place(price="0"), Reason.INVALID_AMOUNT),
    ("unknown symbol", _place(symbol="DOGE-USD"), Reason.UNKNOWN_SYMBOL),
    ("numeric symbol", _place(symbol=1), Reason.UNKNOWN_SYMBOL),
    ("off the lot", _place(quantity="0.00001"), Reason.QUANTITY_NOT_MULTIPLE_OF_LOT),
    ("off the tick", _place(price="30000.001"), Reason.PRICE_NOT_MULTIPLE_OF_TICK),
    ("limit without price", _place(price=_ABSENT), Reason.PRICE_REQUIRED),
    ("market with price", _place(order_type="MARKET"), Reason.PRICE_NOT_ALLOWED),
    (
        "market GTC",
        _place(order_type="MARKET", price=_ABSENT, time_in_force="GTC"),
        Reason.INVALID_TIME_IN_FORCE,
    ),
    (
        "cancel without order",
        orjson.dumps({"type": "CancelOrder", "account_id": "a"}),
        Reason.MISSING_FIELD,
    ),
    (
        "cancel with a quantity",
        orjson.dumps({"type": "CancelOrder", "order_id": "o", "account_id": "a", "quantity": "1"}),
        Reason.UNKNOWN_FIELD,
    ),
]


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in ORDER_REFUSALS],
                         ids=[c[0] for c in ORDER_REFUSALS])  # fmt: skip
def test_decode_order_when_the_record_is_bad_then_refused_with_its_reason(
    raw: bytes | None, reason: Reason
) -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(raw, RECORD_TS)

    assert refused.value.reason is reason
    assert refused.value.code == reason.value


def test_decode_order_when_the_symbol_is_halted_then_refused_symbol_not_trading() -> None:
    halted = Instrument("BTC-USD", "BTC", "USD", Decimal("0.01"), Decimal("0.0001"),
                        InstrumentStatus.HALTED)  # fmt: skip
    decoder = CommandDecoder({"BTC-USD": halted})

    with pytest.raises(DecodeError) as refused:
        decoder.order_command(_place(), RECORD_TS)

    assert refused.value.reason is Reason.SYMBOL_NOT_TRADING
    assert refused.value.field == "symbol"


FILL_REFUSALS: list[tuple[str, bytes, Reason]] = [
    ("other type", _fill(type="PlaceOrder"), Reason.UNKNOWN_COMMAND),
    ("missing execution id", _fill(execution_id=_ABSENT), Reason.MISSING_FIELD),
    ("missing price", _fill(price=_ABSENT), Reason.MISSING_FIELD),
    ("number quantity", _fill(quantity=0.2), Reason.INVALID_AMOUNT),
    ("negative fee", _fill(fee="-0.1"), Reason.INVALID_AMOUNT),
    ("number fee", _fill(fee=0), Reason.INVALID_AMOUNT),
    ("zero price", _fill(price="0"), Reason.INVALID_AMOUNT),
    ("unknown field", _fill(venue="X"), Reason.UNKNOWN_FIELD),
    ("bad executed_at", _fill(executed_at="yesterday"), Reason.INVALID_FIELD),
]


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in FILL_REFUSALS],
                         ids=[c[0] for c in FILL_REFUSALS])  # fmt: skip
def test_decode_fill_when_the_record_is_bad_then_refused_with_its_reason(
    raw: bytes, reason: Reason
) -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.fill(raw, RECORD_TS)

    assert refused.value.reason is reason


def _tick_body(**changes: Any) -> bytes:
    body: dict[str, Any] = {
        "symbol": "BTC-USD", "last_price": "100.00", "best_bid": "99.00", "best_ask": "101.00",
        "bids": [], "asks": [], "ts": 1.0,
    }  # fmt: skip
    body.update(changes)
    return orjson.dumps(body)


TICK_REFUSALS: list[tuple[str, bytes, Reason]] = [
    ("not json", b"nope", Reason.MALFORMED_JSON),
    ("unknown symbol", _tick_body(symbol="DOGE-USD"), Reason.UNKNOWN_SYMBOL),
    ("number price", _tick_body(last_price=100.0), Reason.INVALID_TICK),
    ("crossed", _tick_body(best_bid="102.00"), Reason.INVALID_TICK),
    ("missing ts", orjson.dumps({"symbol": "BTC-USD", "last_price": "1"}), Reason.INVALID_TICK),
]


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in TICK_REFUSALS],
                         ids=[c[0] for c in TICK_REFUSALS])  # fmt: skip
def test_decode_tick_when_the_record_is_bad_then_refused_with_its_reason(
    raw: bytes, reason: Reason
) -> None:
    with pytest.raises(DecodeError) as refused:
        decode_tick(raw, INSTRUMENTS)

    assert refused.value.reason is reason


def test_decode_event_when_the_type_is_unknown_then_refused_unknown_command() -> None:
    with pytest.raises(DecodeError) as refused:
        decode_event(orjson.dumps({"type": "OrderExploded", "order_id": "o"}))

    assert refused.value.reason is Reason.UNKNOWN_COMMAND


def test_decode_event_when_a_field_is_broken_then_refused_invalid_field() -> None:
    filled = next(event for event in EVENTS if isinstance(event, OrderFilled))
    record = orjson.loads(encode_event(filled, "acct-1"))
    del record["price"]

    with pytest.raises(DecodeError) as refused:
        decode_event(orjson.dumps(record))

    assert refused.value.reason is Reason.INVALID_FIELD


# -- the REST door and the orders topic agree ----------------------------------------------


def _as_record(rest_body: bytes) -> bytes:
    """A REST place-order body as the same order on ``orders`` (its ``type`` is ``order_type``)."""
    try:
        body = orjson.loads(rest_body)
    except orjson.JSONDecodeError:
        return rest_body  # not JSON at either door
    if not isinstance(body, dict):
        return rest_body
    record = {("order_type" if k == "type" else k): v for k, v in body.items()}
    return orjson.dumps({"type": "PlaceOrder", **record})  # the id derived, as REST does


def test_decode_order_when_given_the_good_rest_order_then_accepts_it() -> None:
    command = DECODER.order_command(_as_record(orjson.dumps(GOOD)), RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert (command.quantity, command.price) == (Decimal("0.5"), Decimal("60000.00"))


@pytest.mark.parametrize(("raw", "status"), [c[1:3] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])  # fmt: skip
def test_decode_order_when_the_rest_door_refuses_the_order_then_refuses_it_too(
    raw: bytes, status: int
) -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(_as_record(raw), RECORD_TS)

    if status == 400:
        assert refused.value.reason is Reason.MALFORMED_JSON
    else:  # JSON, but not a valid order: refused for what is wrong in it
        assert refused.value.reason is not Reason.MALFORMED_JSON
    assert refused.value.code == refused.value.reason.value


# -- account commands on the orders topic ----------------------------------------------------

LIMITS = RiskLimits(max_order_notional=Decimal("5000.5"), price_collar=Decimal("0.05"))
ACCOUNT_COMMANDS = [
    OpenAccount("acct-9", {"USD": Decimal("1000.50"), "BTC": Decimal("0")}, None),
    OpenAccount("acct-9", {"USD": Decimal("1")}, LIMITS),
    SetLimits("acct-9", LIMITS),
    SetTradingState(TradingState.HALTED, "acct-9"),
    SetTradingState(TradingState.REDUCING, None),
]


@pytest.mark.parametrize("command", ACCOUNT_COMMANDS, ids=repr)
def test_account_command_when_encoded_and_decoded_then_round_trips_on_the_orders_topic(
    command: OpenAccount | SetLimits | SetTradingState,
) -> None:
    assert DECODER.order_command(encode_account_command(command), RECORD_TS) == command


ACCOUNT_REFUSALS = [
    ("no balances", {"type": "OpenAccount", "account_id": "a"}, Reason.MISSING_FIELD),
    ("balances not an object",
     {"type": "OpenAccount", "account_id": "a", "balances": ["1"]}, Reason.INVALID_FIELD),
    ("a balance as a number",
     {"type": "OpenAccount", "account_id": "a", "balances": {"USD": 1}}, Reason.INVALID_AMOUNT),
    ("a negative balance",
     {"type": "OpenAccount", "account_id": "a", "balances": {"USD": "-1"}},
     Reason.INVALID_AMOUNT),
    ("an unknown field",
     {"type": "OpenAccount", "account_id": "a", "balances": {}, "x": 1}, Reason.UNKNOWN_FIELD),
    ("limits without their fields",
     {"type": "SetLimits", "account_id": "a", "limits": {"price_collar": "0.1"}},
     Reason.INVALID_FIELD),
    ("no limits", {"type": "SetLimits", "account_id": "a"}, Reason.MISSING_FIELD),
    ("an unknown state",
     {"type": "SetTradingState", "account_id": "a", "state": "OFF"}, Reason.INVALID_ENUM),
    ("a bad account id",
     {"type": "SetTradingState", "account_id": "a b", "state": "HALTED"}, Reason.INVALID_FIELD),
    ("opening the ledger's venue account",
     {"type": "OpenAccount", "account_id": "VENUE", "balances": {}}, Reason.RESERVED_ACCOUNT_ID),
    ("opening the fees account in lower case",
     {"type": "OpenAccount", "account_id": "fees", "balances": {}}, Reason.RESERVED_ACCOUNT_ID),
    ("limits for the venue",
     {"type": "SetLimits", "account_id": "VENUE",
      "limits": orjson.loads(encode_account_command(SetLimits("a", LIMITS)))["limits"]},
     Reason.RESERVED_ACCOUNT_ID),
    ("halting the fees account",
     {"type": "SetTradingState", "account_id": "FEES", "state": "HALTED"},
     Reason.RESERVED_ACCOUNT_ID),
    ("an account id that is not text",
     {"type": "OpenAccount", "account_id": 7, "balances": {}}, Reason.INVALID_FIELD),
]  # fmt: skip


@pytest.mark.parametrize(("data", "reason"), [c[1:] for c in ACCOUNT_REFUSALS],
                         ids=[c[0] for c in ACCOUNT_REFUSALS])  # fmt: skip
def test_decode_account_command_when_bad_then_refused_with_its_reason(
    data: dict[str, Any], reason: Reason
) -> None:
    with pytest.raises(DecodeError) as refused:
        DECODER.order_command(orjson.dumps(data), RECORD_TS)

    assert refused.value.reason is reason


def test_decode_order_when_given_the_readme_example_then_names_it_as_rest_does() -> None:
    # the record of README.md's "Placing, following and cancelling an order"
    record = orjson.dumps({
        "type": "PlaceOrder", "client_order_id": "gw-42", "account_id": "alice",
        "symbol": "BTC-USD", "side": "SELL", "order_type": "MARKET", "quantity": "0.01",
        "price": None, "time_in_force": "IOC", "created_at": 1767225600.0})  # fmt: skip

    command = DECODER.order_command(record, RECORD_TS)

    assert isinstance(command, PlaceOrder)
    assert command.order_id == "5F5X9ABJRH370XB6NVYJ0HGB4X"  # the id the README names
    assert command.order_id == order_id_for("alice", "gw-42", None)


def test_decode_event_when_the_rejection_reason_is_unknown_then_refused_invalid_field() -> None:
    # Arrange
    rejected = next(event for event in EVENTS if isinstance(event, OrderRejected))
    record = orjson.loads(encode_event(rejected, "acct-1"))
    record["reason"] = "FREE_TEXT"

    # Act
    with pytest.raises(DecodeError) as refused:
        decode_event(orjson.dumps(record))

    # Assert
    assert refused.value.reason is Reason.INVALID_FIELD


def test_decode_event_when_a_rejection_is_read_then_its_reason_is_the_enum_member() -> None:
    # Arrange
    rejected = next(event for event in EVENTS if isinstance(event, OrderRejected))

    # Act
    decoded, _ = decode_event(encode_event(rejected, "acct-1"))

    # Assert
    assert isinstance(decoded, OrderRejected)
    assert decoded.reason is RejectReason.INSUFFICIENT_BUYING_POWER


def test_risk_event_when_a_kill_switch_or_limits_change_then_round_trips_with_its_figures() -> None:
    # Arrange
    limits = RiskLimits(max_order_notional=Decimal("5000.5"), price_collar=Decimal("0.05"))
    halted = kill_switch_change(TradingState.HALTED, None, 9.0)
    replaced = limits_change("acct-1", limits, 10.0)

    # Act
    halted_back = decode_risk_event(encode_risk_event(halted))
    replaced_back = decode_risk_event(encode_risk_event(replaced))

    # Assert
    assert halted_back == RiskEvent(RiskEventType.KILL_SWITCH, None, "HALTED", "", 9.0)
    assert replaced_back == replaced
    assert (replaced_back.type, replaced_back.reason) == (RiskEventType.LIMITS, "LIMITS_REPLACED")
    assert limits_from_dict(orjson.loads(replaced_back.detail)) == limits
