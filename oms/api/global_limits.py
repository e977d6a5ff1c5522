"""``GET`` and ``PUT /api/risk/global-limits``: the firm-wide caps (``oms.domain.global_limits``).

Set on any replica, they are written to Redis and every replica reads them again within
``OMS_GLOBAL_LIMITS_REFRESH_S``; a change is audited as an account's limits are. The answer
also shows what the firm holds against each symbol's caps now (summed over every replica).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from oms.api import audit
from oms.api.order_request import decode_json_object, field_amount
from oms.api.outages import Dependency
from oms.api.problems import DependencyUnavailable, FieldError, invalid_body
from oms.api.services import SERVICES_KEY
from oms.codec import global_limits_to_dict
from oms.domain.accounts import InvalidAccountId, check_account_id
from oms.domain.audit import AuditAction
from oms.domain.global_limits import (
    NOTIONAL_UNIT,
    QUANTITY_UNIT,
    GlobalLimits,
    GlobalLimitsError,
    GlobalLimitsUnavailable,
    GroupCaps,
    InvalidGroupName,
    SymbolCaps,
    caps_for,
    check_group_name,
)
from oms.engine.ports import GlobalLimitStore

_SYMBOL_FIELDS = frozenset({"max_gross_notional", "max_net_position"})
_GROUP_FIELDS = frozenset({"accounts", "max_gross_notional"})


def _unknown(body: Mapping[str, Any], known: frozenset[str], prefix: str) -> list[FieldError]:
    return [FieldError(prefix + name, "unknown field") for name in sorted(set(body) - known)]


def _optional_amount(value: object, name: str, errors: list[FieldError]) -> Decimal | None:
    return None if value is None else field_amount(value, name, errors)


def parse_global_limits(
    body: Mapping[str, Any], symbols: frozenset[str], errors: list[FieldError]
) -> GlobalLimits:
    """The caps of a body (every cap optional; absent or null: off); errors name each field."""
    errors += _unknown(body, frozenset({"symbols", "groups"}), "")
    caps: dict[str, SymbolCaps] = {}
    raw_symbols = body.get("symbols", {})  # absent: none; null is not an object (422)
    if not isinstance(raw_symbols, dict):
        errors.append(FieldError("symbols", 'must be an object such as {"BTC-USD": {...}}'))
        raw_symbols = {}
    for symbol, raw in raw_symbols.items():
        name = f"symbols.{symbol}"
        if symbol not in symbols:
            errors.append(FieldError(name, "not a listed instrument"))
            continue
        if not isinstance(raw, dict):
            errors.append(FieldError(name, "must be an object"))
            continue
        errors += _unknown(raw, _SYMBOL_FIELDS, name + ".")
        caps[symbol] = SymbolCaps(
            _optional_amount(raw.get("max_gross_notional"), name + ".max_gross_notional", errors),
            _optional_amount(raw.get("max_net_position"), name + ".max_net_position", errors),
        )
    groups: dict[str, GroupCaps] = {}
    raw_groups = body.get("groups", {})
    if not isinstance(raw_groups, dict):
        errors.append(FieldError("groups", 'must be an object such as {"desk": {...}}'))
        raw_groups = {}
    for group, raw in raw_groups.items():
        name = f"groups.{group}"
        try:
            check_group_name(group)
        except InvalidGroupName as refused:
            errors.append(FieldError(name, str(refused), refused.code))
            continue
        if not isinstance(raw, dict):
            errors.append(FieldError(name, "must be an object"))
            continue
        errors += _unknown(raw, _GROUP_FIELDS, name + ".")
        members = _members(raw.get("accounts"), name + ".accounts", errors)
        cap = _optional_amount(raw.get("max_gross_notional"), name + ".max_gross_notional", errors)
        groups[group] = GroupCaps(members, cap)
    limits = GlobalLimits(caps, groups)
    if not errors:
        try:  # each cap must fit what the script counts exactly
            for symbol in caps:
                caps_for(limits, symbol, "")
            for group in groups:
                caps_for(limits, "", group)
        except GlobalLimitsError as refused:
            errors.append(FieldError("symbols", str(refused), refused.code))
    return limits


def _members(value: object, name: str, errors: list[FieldError]) -> frozenset[str]:
    if not isinstance(value, list) or not value:
        errors.append(FieldError(name, "must be a non-empty list of account ids"))
        return frozenset()
    members: set[str] = set()
    for account in value:
        try:
            members.add(check_account_id(account))
        except InvalidAccountId as refused:
            errors.append(FieldError(name, str(refused), refused.code))
    return frozenset(members)


def _store(request: web.Request) -> GlobalLimitStore:
    services = request.app[SERVICES_KEY]
    store = services.global_limits
    if store is None:  # an app built without one: nothing to read or write the caps in
        raise DependencyUnavailable(
            Dependency.REDIS, services.settings.retry_after_s, "no store for global limits"
        )
    return store


def _amount(units: int, unit: Decimal) -> str:
    """Units back to a plain decimal string (``290``, ``0.01``: never ``0E-8``)."""
    return f"{(units * unit).normalize():f}"


async def _answer(store: GlobalLimitStore, limits: GlobalLimits) -> Any:
    """The caps and, per capped symbol and group, what the firm holds now."""
    usage: dict[str, Any] = {}
    for symbol in sorted(limits.symbols):
        held = await store.usage(symbol)
        usage[symbol] = {
            "open_notional": _amount(held.notional, NOTIONAL_UNIT),
            "open_buy": _amount(held.buying, QUANTITY_UNIT),
            "open_sell": _amount(held.selling, QUANTITY_UNIT),
            "net_position": _amount(held.position, QUANTITY_UNIT),
        }
    groups: dict[str, Any] = {}
    for group in sorted(limits.groups):
        held = await store.usage("", group)
        groups[group] = {"open_notional": _amount(held.group_notional, NOTIONAL_UNIT)}
    return {**global_limits_to_dict(limits), "usage": usage, "group_usage": groups}


async def _guarded(request: web.Request, call: Any) -> Any:
    try:
        return await call
    except GlobalLimitsUnavailable:
        settings = request.app[SERVICES_KEY].settings
        raise DependencyUnavailable(
            Dependency.REDIS, settings.retry_after_s, "redis did not answer in time"
        ) from None


async def get_global_limits(request: web.Request) -> web.Response:
    """``GET /api/risk/global-limits``."""
    store = _store(request)
    limits = await _guarded(request, store.limits())
    body = await _guarded(request, _answer(store, limits))
    return web.Response(body=orjson.dumps(body), content_type="application/json")


async def put_global_limits(request: web.Request) -> web.Response:
    """``PUT /api/risk/global-limits``: replace every firm-wide cap (absent ones switch off)."""
    store = _store(request)
    body = decode_json_object(await request.read())
    services = request.app[SERVICES_KEY]
    errors: list[FieldError] = []
    limits = parse_global_limits(body, frozenset(services.engine.instruments), errors)
    if errors:
        raise invalid_body(errors)
    await _guarded(request, store.set_limits(limits))
    await audit.record(
        request,
        AuditAction.GLOBAL_LIMITS_CHANGED,
        at=services.clock(),
        detail={"limits": global_limits_to_dict(limits)},
    )
    answer = await _guarded(request, _answer(store, limits))
    return web.Response(body=orjson.dumps(answer), content_type="application/json")


def add_global_limit_routes(app: web.Application) -> None:
    """Mount the firm-wide caps."""
    app.router.add_get("/api/risk/global-limits", get_global_limits, allow_head=False)
    app.router.add_put("/api/risk/global-limits", put_global_limits)
