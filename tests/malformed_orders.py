"""Malformed place-order requests, shared by the unit test of the door and the service tests.

Each case: a name, the raw body, the status expected (400 or 422) and the fields named wrong.
"""

from __future__ import annotations

from typing import Any

import orjson

GOOD: dict[str, Any] = {
    "account_id": "acct-1",
    "client_order_id": "c-1",
    "symbol": "BTC-USD",
    "side": "BUY",
    "type": "LIMIT",
    "quantity": "0.5",
    "price": "60000.00",
    "time_in_force": "GTC",
}


def body(**changes: Any) -> bytes:
    """The good order with some fields changed (a value of ... removes the field)."""
    document = {k: v for k, v in {**GOOD, **changes}.items() if v is not ...}
    return orjson.dumps(document)


MALFORMED: list[tuple[str, bytes, int, set[str]]] = [
    ("invalid JSON", b'{"account_id": "acct-1",', 400, set()),
    ("empty body", b"", 400, set()),
    ("not an object", b'["BUY"]', 422, {""}),
    ("missing account_id", body(account_id=...), 422, {"account_id"}),
    ("missing symbol", body(symbol=...), 422, {"symbol"}),
    ("missing side", body(side=...), 422, {"side"}),
    ("missing quantity", body(quantity=...), 422, {"quantity"}),
    ("missing price on LIMIT", body(price=...), 422, {"price"}),
    ("price on MARKET", body(type="MARKET", time_in_force="IOC"), 422, {"price"}),
    ("MARKET GTC", body(type="MARKET", price=..., time_in_force="GTC"), 422, {"time_in_force"}),
    ("zero quantity", body(quantity="0"), 422, {"quantity"}),
    ("negative quantity", body(quantity="-1"), 422, {"quantity"}),
    ("NaN quantity", body(quantity="NaN"), 422, {"quantity"}),
    ("infinite quantity", body(quantity="Infinity"), 422, {"quantity"}),
    ("huge quantity", body(quantity="1" + "0" * 30), 422, {"quantity"}),
    ("exponent quantity", body(quantity="1e3"), 422, {"quantity"}),
    ("quantity as JSON number", body(quantity=0.5), 422, {"quantity"}),
    ("price as JSON number", body(price=60000), 422, {"price"}),
    ("quantity finer than the lot", body(quantity="0.00001"), 422, {"quantity"}),
    ("price finer than the tick", body(price="60000.001"), 422, {"price"}),
    ("zero price", body(price="0"), 422, {"price"}),
    ("unknown symbol", body(symbol="DOGE-EUR"), 422, {"symbol"}),
    ("symbol of the wrong type", body(symbol=42), 422, {"symbol"}),
    ("lower-case side", body(side="buy"), 422, {"side"}),
    ("unknown type", body(type="STOP"), 422, {"type"}),
    ("unknown time in force", body(time_in_force="DAY"), 422, {"time_in_force"}),
    ("unknown field", body(leverage="10"), 422, {"leverage"}),
    ("account_id of the wrong type", body(account_id=7), 422, {"account_id"}),
    ("account_id too long", body(account_id="a" * 65), 422, {"account_id"}),
    ("quantity as boolean", body(quantity=True), 422, {"quantity"}),
    ("null quantity", body(quantity=None), 422, {"quantity"}),
]
