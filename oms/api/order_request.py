"""Validation at the door: a place-order body becomes an ``OrderRequest`` or a list of field errors.

Only checks that need no state run here (the risk supervisor does the rest): the body is a JSON
object with exactly the known fields; amounts are JSON strings holding plain decimals (a JSON
number is refused, so no amount ever passes through a float); enum values are exact upper case;
the symbol is listed; quantity and price sit on the instrument's lot and tick grids. The amount
and id grammar is ``oms.codec``'s, shared with the Kafka decoder (``oms.stream.codecs``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import orjson

from oms.api.problems import FieldError, invalid_body, malformed_json
from oms.codec import InvalidAmount, parse_amount
from oms.domain.accounts import IDENTIFIER
from oms.domain.enums import OrderType, Side, TimeInForce, by_name
from oms.domain.instruments import Instrument, InstrumentStatus
from oms.domain.order_terms import term_problems

REQUIRED = ("account_id", "symbol", "side", "type", "quantity")
OPTIONAL = ("client_order_id", "price", "time_in_force", "stop_price", "expire_at", "post_only")
KNOWN = frozenset(REQUIRED + OPTIONAL)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A place-order body that passed every stateless check."""

    account_id: str
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    stop_price: Decimal | None = None
    expire_at: float | None = None
    post_only: bool = False

    def fingerprint(self) -> bytes:
        """Canonical bytes of what was asked: two bodies asking the same thing compare equal."""
        return orjson.dumps(
            [
                self.account_id,
                self.client_order_id,
                self.symbol,
                self.side.value,
                self.type.value,
                str(self.quantity.normalize()),
                None if self.price is None else str(self.price.normalize()),
                self.time_in_force.value,
                None if self.stop_price is None else str(self.stop_price.normalize()),
                self.expire_at,
                self.post_only,
            ]
        )


def decode_json_object(body: bytes) -> dict[str, Any]:
    """Parse the body; a body that is not JSON is a 400, JSON that is not an object a 422."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise malformed_json(f"body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise invalid_body([FieldError("", "body must be a JSON object")])
    return value


def _identifier(body: Mapping[str, Any], name: str, errors: list[FieldError]) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not IDENTIFIER.fullmatch(value):
        errors.append(
            FieldError(name, "must be 1-64 characters: letters, digits, '.', '_', ':', '-'")
        )
        return None
    return value


_Choice = TypeVar("_Choice", Side, OrderType, TimeInForce)


def _choice(
    body: Mapping[str, Any], name: str, enum: type[_Choice], errors: list[FieldError]
) -> _Choice | None:
    value = body.get(name)
    if value is None:
        return None
    member = by_name(enum).get(value) if isinstance(value, str) else None
    if member is None:
        allowed = ", ".join(by_name(enum))
        errors.append(FieldError(name, f"must be one of {allowed} (exact, upper case)"))
    return member


def field_amount(value: object, name: str, errors: list[FieldError]) -> Decimal | None:
    """A positive decimal carried as a JSON string (``oms.codec``'s grammar), or an error."""
    try:
        return parse_amount(value)
    except InvalidAmount as exc:
        errors.append(FieldError(name, str(exc)))
        return None


def _terms(  # noqa: PLR0917 - what the terms are checked against
    body: Mapping[str, Any],
    order_type: OrderType | None,
    time_in_force: TimeInForce | None,
    price: Decimal | None,
    instrument: Instrument | None,
    now: float,
    errors: list[FieldError],
) -> tuple[Decimal | None, float | None, bool]:
    """``stop_price``, ``expire_at`` and ``post_only``, read and checked with the type and time
    in force (``oms.domain.order_terms``, the check every door shares); errors appended."""
    stop_price = None
    if body.get("stop_price") is not None:
        stop_price = field_amount(body["stop_price"], "stop_price", errors)
    expire_at = _expire_at(body, errors)
    post_only = body.get("post_only", False)
    if not isinstance(post_only, bool):
        errors.append(FieldError("post_only", "must be true or false"))
        post_only = False
    if instrument is not None and stop_price is not None and stop_price % instrument.tick_size:
        errors.append(
            FieldError("stop_price", f"must be a multiple of the tick size {instrument.tick_size}")
        )
    if order_type is None:
        return stop_price, expire_at, post_only
    taker = order_type in (OrderType.MARKET, OrderType.STOP_MARKET)
    tif = time_in_force or (TimeInForce.IOC if taker else TimeInForce.GTC)
    plain = order_type in (OrderType.LIMIT, OrderType.MARKET)
    errors += [
        FieldError(problem.field, problem.message)
        for problem in term_problems(
            order_type, tif, price=price, stop_price=stop_price, expire_at=expire_at,
            post_only=post_only, now=now,
        )
        # A LIMIT's or MARKET's price and time in force keep their own checks and messages.
        if not (plain and problem.field in ("price", "time_in_force"))
    ]  # fmt: skip
    return stop_price, expire_at, post_only


def _expire_at(body: Mapping[str, Any], errors: list[FieldError]) -> float | None:
    value = body.get("expire_at")
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value if isinstance(value, str) else "")
    except ValueError:
        errors.append(
            FieldError("expire_at", "must be an RFC 3339 time, e.g. 2030-01-01T00:00:00Z")
        )
        return None
    if moment.tzinfo is None:
        errors.append(FieldError("expire_at", "must carry its offset (Z or +hh:mm)"))
        return None
    return moment.timestamp()


def parse_order_request(
    body: Mapping[str, Any], instruments: Mapping[str, Instrument], now: float = 0.0
) -> OrderRequest:
    """Validate a decoded body; raise a 422 problem listing every wrong field."""
    errors: list[FieldError] = [
        FieldError(name, "unknown field") for name in sorted(set(body) - KNOWN)
    ]
    errors += [FieldError(name, "is required") for name in REQUIRED if body.get(name) is None]

    account_id = _identifier(body, "account_id", errors)
    client_order_id = _identifier(body, "client_order_id", errors)
    side = _choice(body, "side", Side, errors)
    order_type = _choice(body, "type", OrderType, errors)
    time_in_force = _choice(body, "time_in_force", TimeInForce, errors)
    quantity = field_amount(body["quantity"], "quantity", errors) if "quantity" in body else None
    price = None
    if body.get("price") is not None:
        price = field_amount(body["price"], "price", errors)

    instrument: Instrument | None = None
    symbol = body.get("symbol")
    if symbol is not None:
        instrument = instruments.get(symbol) if isinstance(symbol, str) else None
        if instrument is None:
            errors.append(FieldError("symbol", "is not a listed instrument"))
        elif instrument.status is not InstrumentStatus.TRADING:
            errors.append(FieldError("symbol", f"is {instrument.status.value}, not trading"))
    if instrument is not None and quantity is not None and quantity % instrument.lot_size != 0:
        errors.append(
            FieldError("quantity", f"must be a multiple of the lot size {instrument.lot_size}")
        )
    if instrument is not None and price is not None and price % instrument.tick_size != 0:
        errors.append(
            FieldError("price", f"must be a multiple of the tick size {instrument.tick_size}")
        )
    stop_price, expire_at, post_only = _terms(
        body, order_type, time_in_force, price, instrument, now, errors
    )

    if order_type is OrderType.LIMIT and "price" not in body:
        errors.append(FieldError("price", "is required for a LIMIT order"))
    if order_type is OrderType.MARKET and "price" in body:
        errors.append(FieldError("price", "must be absent for a MARKET order"))
    if order_type is OrderType.MARKET and time_in_force is TimeInForce.GTC:
        errors.append(FieldError("time_in_force", "a MARKET order cannot rest: use IOC or FOK"))

    if errors:
        raise invalid_body(errors)
    # Every one of these was checked above; the conditions only narrow the types.
    if not (account_id and isinstance(symbol, str) and side and order_type and quantity):
        raise invalid_body([FieldError("", "incomplete order")])
    if time_in_force is None:
        time_in_force = (
            TimeInForce.IOC
            if order_type in (OrderType.MARKET, OrderType.STOP_MARKET)
            else TimeInForce.GTC
        )
    return OrderRequest(
        account_id=account_id,
        client_order_id=client_order_id,
        symbol=symbol,
        side=side,
        type=order_type,
        quantity=quantity,
        price=price,
        time_in_force=time_in_force,
        stop_price=stop_price,
        expire_at=expire_at,
        post_only=post_only,
    )


AMEND_FIELDS = frozenset({"quantity", "price"})


@dataclass(frozen=True, slots=True)
class AmendRequest:
    """An amend body that passed every stateless check: the new quantity and/or price."""

    quantity: Decimal | None
    price: Decimal | None


def parse_amend_request(body: Mapping[str, Any], instrument: Instrument) -> AmendRequest:
    """Validate a decoded amend body against the order's instrument; raise a 422 problem
    listing every wrong field."""
    errors: list[FieldError] = [
        FieldError(name, "unknown field") for name in sorted(set(body) - AMEND_FIELDS)
    ]
    quantity = price = None
    if body.get("quantity") is not None:
        quantity = field_amount(body["quantity"], "quantity", errors)
    if body.get("price") is not None:
        price = field_amount(body["price"], "price", errors)
    if body.get("quantity") is None and body.get("price") is None:
        errors.append(FieldError("", "an amend needs a quantity or a price"))
    if quantity is not None and quantity % instrument.lot_size != 0:
        errors.append(
            FieldError("quantity", f"must be a multiple of the lot size {instrument.lot_size}")
        )
    if price is not None and price % instrument.tick_size != 0:
        errors.append(
            FieldError("price", f"must be a multiple of the tick size {instrument.tick_size}")
        )
    if errors:
        raise invalid_body(errors)
    return AmendRequest(quantity=quantity, price=price)
