"""Instruments, accounts and risk: open and read accounts, dry-run checks, limits, kill switch."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Awaitable, Collection, Mapping
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from oms import correlation
from oms.api import audit, identity
from oms.api.encoding import (
    account_json,
    balances_json,
    denial_json,
    instrument_json,
    limits_json,
    positions_json,
)
from oms.api.forwarding import from_owner
from oms.api.ids import new_id
from oms.api.order_request import decode_json_object, field_amount, parse_order_request
from oms.api.orders import new_order
from oms.api.problems import FieldError, conflict, invalid_body, not_found
from oms.api.services import SERVICES_KEY
from oms.codec import (
    DECIMAL_LIMITS,
    PER_SYMBOL_LIMITS,
    InvalidAmount,
    balances_to_dict,
    limits_to_dict,
    parse_amount,
)
from oms.domain.access import Action
from oms.domain.accounts import InvalidAccountId, check_account_id, is_reserved
from oms.domain.audit import AuditAction
from oms.domain.commands import OpenAccount, SetLimits, SetTradingState
from oms.domain.errors import AccountExists, DomainError, UnknownAccount
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import RejectReason
from oms.engine.ports import AccountRecord
from oms.stream.codecs import kill_switch_change, limits_change

logger = logging.getLogger(__name__)

_ASSET = re.compile(r"[A-Z0-9]{1,16}")
LIMIT_FIELDS = frozenset(
    (*DECIMAL_LIMITS, *PER_SYMBOL_LIMITS, "velocity_window_s", "max_orders_per_window")
)


def _json(
    body: object, status: int = 200, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


async def _body(request: web.Request) -> dict[str, Any]:
    return decode_json_object(await request.read())


def _unknown_fields(
    body: Mapping[str, Any], known: frozenset[str], prefix: str = ""
) -> list[FieldError]:
    return [FieldError(prefix + name, "unknown field") for name in sorted(set(body) - known)]


def _account_id(value: object, errors: list[FieldError]) -> str | None:
    """The account id of a body, if it may name a client's account (its grammar, not reserved)."""
    try:
        return check_account_id(value)
    except InvalidAccountId as refused:
        errors.append(FieldError("account_id", str(refused), refused.code))
        return None


def _balances(value: object, errors: list[FieldError]) -> dict[str, Decimal]:
    if not isinstance(value, dict):
        errors.append(FieldError("balances", 'must be an object such as {"USD": "1000"}'))
        return {}
    balances: dict[str, Decimal] = {}
    for asset, raw in value.items():
        name = f"balances.{asset}"
        if not _ASSET.fullmatch(asset):
            errors.append(FieldError(name, "asset must be 1-16 upper-case letters or digits"))
        else:
            try:
                balances[asset] = parse_amount(raw, zero_ok=True)
            except InvalidAmount:
                errors.append(FieldError(name, "must be a non-negative decimal string"))
    return balances


def parse_limits(
    value: object, errors: list[FieldError], symbols: Collection[str], prefix: str = "limits."
) -> RiskLimits:
    """A limits object (every field optional; absent or null switches that check off); a
    per-symbol limit names a listed instrument (``symbols``), else 422 ``UNKNOWN_INSTRUMENT``:
    a limit on a symbol nobody trades would never apply, and an arbitrary key could not even
    be stored (a NUL in it made MongoDB refuse the account's document: a 500 schemathesis
    found)."""
    if not isinstance(value, dict):
        errors.append(FieldError(prefix.rstrip("."), "must be an object"))
        return RiskLimits()
    errors += _unknown_fields(value, LIMIT_FIELDS, prefix)
    fields: dict[str, Any] = {}
    for name in DECIMAL_LIMITS:
        if value.get(name) is not None:
            fields[name] = field_amount(value[name], prefix + name, errors)
    for name in PER_SYMBOL_LIMITS:
        raw = value.get(name)
        if raw is None:
            continue
        if not isinstance(raw, dict):
            errors.append(FieldError(prefix + name, 'must be an object such as {"BTC-USD": "2"}'))
            continue
        for sym in raw:
            if sym not in symbols:
                errors.append(
                    FieldError(
                        f"{prefix}{name}",
                        f"{sym!r} is not a listed instrument",
                        code=RejectReason.UNKNOWN_INSTRUMENT,
                    )
                )
        parsed = {
            sym: field_amount(v, f"{prefix}{name}.{sym}", errors)
            for sym, v in raw.items()
            if sym in symbols
        }
        fields[name] = {sym: v for sym, v in parsed.items() if v is not None}
    fields.update(_velocity(value, errors, prefix))
    if errors:
        return RiskLimits()
    return RiskLimits(**fields)


def _velocity(value: Mapping[str, Any], errors: list[FieldError], prefix: str) -> dict[str, Any]:
    """The velocity window (seconds, a JSON number: not an amount) and its order count."""
    fields: dict[str, Any] = {}
    window = value.get("velocity_window_s")
    if window is not None:
        if isinstance(window, bool) or not isinstance(window, int | float) or not window > 0:
            errors.append(FieldError(prefix + "velocity_window_s", "must be a positive number"))
        else:
            fields["velocity_window_s"] = float(window)
    count = value.get("max_orders_per_window")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            errors.append(
                FieldError(prefix + "max_orders_per_window", "must be a positive integer")
            )
        else:
            fields["max_orders_per_window"] = count
    return fields


async def list_instruments(request: web.Request) -> web.Response:
    """``GET /api/instruments``."""
    instruments = request.app[SERVICES_KEY].engine.instruments
    return _json([instrument_json(i) for i in instruments.values()])


async def open_account(request: web.Request) -> web.Response:
    """``POST /api/accounts``: 201 the new account; 409 if it exists."""
    services = request.app[SERVICES_KEY]
    body = await _body(request)
    errors = _unknown_fields(body, frozenset({"account_id", "balances", "limits"}))
    account_id = _account_id(body.get("account_id"), errors)
    balances = _balances(body.get("balances", {}), errors)
    symbols = services.engine.instruments
    limits = (
        parse_limits(body["limits"], errors, symbols) if body.get("limits") is not None else None
    )
    if errors or account_id is None:
        raise invalid_body(errors)
    identity.require(request, Action.OPEN_ACCOUNT)
    correlation.bind(account_id=account_id)
    record = AccountRecord(account_id, balances, limits, opened_at=services.clock())
    try:
        # Recorded first: an account the engine knows must be one a restart can re-open.
        await services.accounts.open(record)
    except AccountExists:
        # Announced again: the first request may have died between recording and announcing.
        held = await services.accounts.get(account_id)
        if held is not None:
            await services.bus.send_account(OpenAccount(account_id, held.balances, held.limits))
        raise conflict("ACCOUNT_EXISTS", f"account {account_id} already exists") from None
    await audit.record(
        request,
        AuditAction.ACCOUNT_OPENED,
        at=record.opened_at,
        account_id=account_id,
        detail={
            "balances": balances_to_dict(balances),
            "limits": None if limits is None else limits_to_dict(limits),
        },
    )
    # This replica serves it at once; the one owning its partition of ``orders`` (where its
    # orders go) learns it from the announcement, ahead of any of its orders.
    snapshot = await services.engine.open_account(account_id, balances, limits, exist_ok=True)
    await services.bus.send_account(OpenAccount(account_id, balances, limits))
    return _json(
        account_json(snapshot, services.engine.instruments),
        status=201,
        headers={"Location": f"/api/accounts/{account_id}"},
    )


async def _snapshot(request: web.Request, account_id: str) -> Any:
    """The account as this replica (its owner) holds it; 404 when it was never opened.

    An account opened on another replica is recorded in MongoDB before its ``OpenAccount`` is
    announced on ``orders``: until the announcement reaches this replica, nothing of the
    account can have happened here (its orders come after it on the same partition), so its
    record is its state. It is opened here from the record at once, as a POST on this replica
    would have; the announcement then finds it open.
    """
    identity.acting_account(request, account_id)
    services = request.app[SERVICES_KEY]
    try:
        return await services.engine.account(account_id)
    except UnknownAccount:
        record = await services.accounts.get(account_id)
        # A reserved id (the ledger's VENUE, FEES) is never a client's account, whatever the
        # database holds: start-up left such a record out, and so does a read.
        if record is None or is_reserved(account_id):
            raise not_found(f"account {account_id}") from None
    try:
        snapshot = await services.engine.open_account(
            account_id, record.balances, record.limits, exist_ok=True
        )
    except DomainError as refused:  # a stored record the engine will not open (left out too)
        raise not_found(f"account {account_id}") from refused
    if record.trading_state is not TradingState.ACTIVE:
        await services.engine.set_kill_switch(record.trading_state, account_id)
        snapshot = await services.engine.account(account_id)
    return snapshot


async def get_account(request: web.Request) -> web.Response:
    """``GET /api/accounts/{account_id}``: balances, reservations, positions, PnL (the owner's)."""
    account_id = identity.acting_account(request, request.match_info["account_id"])
    if (answer := await from_owner(request, account_id)) is not None:
        return answer
    snapshot = await _snapshot(request, account_id)
    return _json(account_json(snapshot, request.app[SERVICES_KEY].engine.instruments))


async def validate_order(request: web.Request) -> web.Response:
    """``POST /api/risk/validate``: every pre-trade check as a dry run; nothing changes."""
    services = request.app[SERVICES_KEY]
    order_request = parse_order_request(
        await _body(request), services.engine.instruments, services.clock()
    )
    identity.acting_account(request, order_request.account_id)
    if (answer := await from_owner(request, order_request.account_id)) is not None:
        return answer  # the owner's balances and limits decide
    command = new_order(order_request, f"dry-run:{new_id()}", services.clock())
    denials = await services.engine.validate(command)
    return _json({"accepted": not denials, "violations": [denial_json(d) for d in denials]})


async def get_positions(request: web.Request) -> web.Response:
    """``GET /api/risk/positions?account_id=``: positions and balances."""
    account_id = identity.query_account(request, required=True)
    assert account_id is not None  # required=True answers 422 instead of None
    if (answer := await from_owner(request, account_id)) is not None:
        return answer
    snapshot = await _snapshot(request, account_id)
    return _json(
        {
            "account_id": account_id,
            "positions": positions_json(snapshot, request.app[SERVICES_KEY].engine.instruments),
            "balances": balances_json(snapshot),
        }
    )


async def get_limits(request: web.Request) -> web.Response:
    """``GET /api/risk/limits?account_id=``."""
    account_id = identity.query_account(request, required=True)
    assert account_id is not None
    if (answer := await from_owner(request, account_id)) is not None:
        return answer
    snapshot = await _snapshot(request, account_id)
    return _json({"account_id": account_id, "limits": limits_json(snapshot.limits)})


async def put_limits(request: web.Request) -> web.Response:
    """``PUT /api/risk/limits/{account_id}``: replace every limit (absent ones switch off)."""
    account_id = identity.acting_account(request, request.match_info["account_id"])
    errors: list[FieldError] = []
    services = request.app[SERVICES_KEY]
    limits = parse_limits(await _body(request), errors, services.engine.instruments, prefix="")
    if errors:
        raise invalid_body(errors)
    try:
        await services.accounts.set_limits(account_id, limits)  # the store knows every account
    except UnknownAccount:
        raise not_found(f"account {account_id}") from None
    at, by = services.clock(), identity.caller(request).who
    await audit.record(
        request,
        AuditAction.LIMITS_CHANGED,
        at=at,
        account_id=account_id,
        detail={"limits": limits_to_dict(limits)},
    )
    await _here(services.engine.set_limits(account_id, limits))
    await services.bus.send_account(SetLimits(account_id, limits))  # to the account's owner
    # Announced once recorded: a reader never hears of limits a restart would not restore.
    await services.risk_events.publish_risk_event(limits_change(account_id, limits, at, by))
    return _json({"account_id": account_id, "limits": limits_json(limits)})


async def kill_switch(request: web.Request) -> web.Response:
    """``POST /api/risk/kill-switch``: ACTIVE, HALTED or REDUCING, for one account or all."""
    body = await _body(request)
    errors = _unknown_fields(body, frozenset({"state", "account_id"}))
    raw_state = body.get("state")
    state: TradingState | None = None
    if isinstance(raw_state, str) and raw_state in TradingState.__members__:
        state = TradingState(raw_state)
    else:
        errors.append(FieldError("state", "must be one of " + ", ".join(TradingState)))
    account_id = None
    if body.get("account_id") is not None:
        account_id = _account_id(body["account_id"], errors)
    if errors or state is None:
        raise invalid_body(errors)
    if account_id is None:
        identity.require(request, Action.HALT_ALL)
    else:
        identity.acting_account(request, account_id)
    services = request.app[SERVICES_KEY]
    try:
        # Recorded first (the store knows every account): a restart must not resume what an
        # operator halted.
        if account_id is None:
            await services.accounts.set_global_trading_state(state)
        else:
            await services.accounts.set_trading_state(account_id, state)
    except UnknownAccount:
        raise not_found(f"account {account_id}") from None
    at, by = services.clock(), identity.caller(request).who
    await audit.record(
        request,
        AuditAction.KILL_SWITCH_CHANGED,
        at=at,
        account_id=account_id,
        detail={"state": state.value, "scope": "global" if account_id is None else "account"},
    )
    await _here(services.engine.set_kill_switch(state, account_id))
    # To the replica owning the account (every replica, for the global switch).
    await services.bus.send_account(SetTradingState(state, account_id))
    # Announced once recorded, as the limits are.
    await services.risk_events.publish_risk_event(kill_switch_change(state, account_id, at, by))
    # An operator's act that stops trading: on-call must find who did it and when.
    logger.warning(
        "kill switch set to %s for %s by %s", state.value,
        "every account" if account_id is None else f"account {account_id}",
        identity.caller(request).who,
    )  # fmt: skip
    return _json({"state": state.value, "account_id": account_id})


async def _here(change: Awaitable[Any]) -> None:
    """Apply an account change to this replica's engine too, if it knows the account (it may
    be owned, and so far only known, by another replica: the announcement reaches that one)."""
    with contextlib.suppress(UnknownAccount):
        await change


def add_account_routes(app: web.Application) -> None:
    """Mount instruments, accounts and risk."""
    router = app.router
    router.add_get("/api/instruments", list_instruments, allow_head=False)
    router.add_post("/api/accounts", open_account)
    router.add_get("/api/accounts/{account_id}", get_account, allow_head=False)
    router.add_post("/api/risk/validate", validate_order)
    router.add_get("/api/risk/positions", get_positions, allow_head=False)
    router.add_get("/api/risk/limits", get_limits, allow_head=False)
    router.add_put("/api/risk/limits/{account_id}", put_limits)
    router.add_post("/api/risk/kill-switch", kill_switch)
