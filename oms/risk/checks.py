"""The pre-trade checks: small pure functions, each returning a ``Denial`` or None.

Each check reads one ``OrderContext`` (the order plus everything the book knows that matters to
it) and changes nothing. ``CHECKS`` is the ordered tuple the book runs; every check runs, so a
denied order carries every rule it broke. Three gates come before the context can exist (the
account, the instrument, a reference price for a MARKET order); when one fails it is the only
denial.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from oms.domain.commands import PlaceOrder
from oms.domain.instruments import Instrument, InstrumentStatus
from oms.domain.limits import RiskLimits, TradingState
from oms.domain.reasons import Denial, RejectReason, deny
from oms.risk.account import AccountState
from oms.risk.positions import PositionState

_ZERO = Decimal(0)
# Enum members bound once: attribute access on an enum class costs more than a global lookup.
_ACTIVE = TradingState.ACTIVE
_HALTED = TradingState.HALTED
_TRADING = InstrumentStatus.TRADING
_SHARE_QUANTUM = Decimal("0.0001")


class OrderContext:
    """What one check may read about one order; built once per check run, never changed."""

    __slots__ = (
        "account",
        "global_state",
        "instrument",
        "is_buy",
        "limits",
        "marks",
        "notional",
        "now",
        "order",
        "position",
        "price",
        "protection",
        "reference",
        "reserve_amount",
        "reserve_asset",
    )

    def __init__(  # noqa: PLR0917 - built once per order: the book passes it positionally
        self,
        order: PlaceOrder,
        instrument: Instrument,
        account: AccountState,
        position: PositionState,
        is_buy: bool,
        reference: Decimal | None,
        price: Decimal,
        protection: Decimal,
        notional: Decimal,
        reserve_asset: str,
        reserve_amount: Decimal,
        global_state: TradingState,
        marks: dict[str, Decimal],
        now: float,
    ) -> None:
        self.order = order
        self.instrument = instrument
        self.account = account
        self.limits: RiskLimits = account.limits
        # The account's position in the symbol (a flat stand-in before its first order there).
        self.position = position
        self.is_buy = is_buy
        # Last price of the symbol, or None before the first mark.
        self.reference = reference
        # The price notionals are measured at: the limit price, or the reference for MARKET.
        self.price = price
        # The worst price the order may fill at (limit price, or the collar edge for MARKET).
        self.protection = protection
        self.notional = notional
        # What accepting would hold: quote for a BUY, base for a SELL.
        self.reserve_asset = reserve_asset
        self.reserve_amount = reserve_amount
        self.global_state = global_state
        self.marks = marks
        self.now = now


Check = Callable[[OrderContext], Denial | None]


# Gates: without them there is no context to check.


def deny_unknown_account(account_id: str) -> Denial:
    """The order names an account the book does not hold."""
    return deny(RejectReason.UNKNOWN_ACCOUNT, account_id=account_id)


def deny_unknown_instrument(symbol: str) -> Denial:
    """The order names a symbol that is not listed."""
    return deny(RejectReason.UNKNOWN_INSTRUMENT, symbol=symbol)


def deny_no_market_price(symbol: str) -> Denial:
    """A MARKET order with no last price: nothing to bound its fill price or its notional."""
    return deny(RejectReason.NO_MARKET_PRICE, symbol=symbol)


# Checks, in the order the book runs them.


def check_kill_switch(ctx: OrderContext) -> Denial | None:
    """HALTED (global, then account) denies everything; REDUCING lets through reducing orders only."""
    account_state = ctx.account.trading_state
    if ctx.global_state is _ACTIVE and account_state is _ACTIVE:
        return None
    if ctx.global_state is _HALTED:
        return deny(RejectReason.KILL_SWITCH_GLOBAL, state=ctx.global_state)
    if account_state is _HALTED:
        return deny(RejectReason.KILL_SWITCH_ACCOUNT, state=account_state)
    if ctx.position.reduces(is_buy=ctx.is_buy, quantity=ctx.order.quantity):
        return None
    return deny(
        RejectReason.REDUCE_ONLY,
        position=ctx.position.quantity,
        open_buy=ctx.position.open_buy,
        open_sell=ctx.position.open_sell,
        side=ctx.order.side,
        quantity=ctx.order.quantity,
    )


def check_instrument_trading(ctx: OrderContext) -> Denial | None:
    """The instrument must be trading."""
    status = ctx.instrument.status
    if status is _TRADING:
        return None
    return deny(RejectReason.INSTRUMENT_NOT_TRADING, symbol=ctx.instrument.symbol, status=status)


def check_order_quantity(ctx: OrderContext) -> Denial | None:
    """The order's quantity must not exceed the per-order maximum for its symbol."""
    max_quantity = ctx.limits.order_quantity_limit(ctx.instrument.symbol)
    if max_quantity is None or ctx.order.quantity <= max_quantity:
        return None
    return deny(
        RejectReason.QUANTITY_EXCEEDS_MAX_PER_ORDER,
        max_quantity=max_quantity,
        quantity=ctx.order.quantity,
    )


def check_order_notional(ctx: OrderContext) -> Denial | None:
    """The order's notional must not exceed the per-order maximum."""
    max_notional = ctx.limits.max_order_notional
    if max_notional is None or ctx.notional <= max_notional:
        return None
    return deny(
        RejectReason.NOTIONAL_EXCEEDS_MAX_PER_ORDER,
        max_notional=max_notional,
        notional=ctx.notional,
    )


def check_price_collar(ctx: OrderContext) -> Denial | None:
    """A LIMIT price must lie within the collar band around the reference price.

    MARKET orders pass (their protection price is the band's edge); so do LIMIT orders before the
    symbol's first mark, since there is nothing to measure them against.
    """
    collar = ctx.limits.price_collar
    reference = ctx.reference
    limit_price = ctx.order.price
    if collar is None or reference is None or limit_price is None:
        return None
    band = reference * collar
    if abs(limit_price - reference) <= band:
        return None
    return deny(
        RejectReason.PRICE_OUTSIDE_COLLAR,
        price=limit_price,
        reference=reference,
        low=reference - band,
        high=reference + band,
    )


def check_buying_power(ctx: OrderContext) -> Denial | None:
    """The available balance (reservations already taken out) must cover the reservation.

    BUY: quote >= quantity * protection price * (1 + fee rate); SELL: base >= quantity.
    """
    available = ctx.account.available(ctx.reserve_asset)
    if available >= ctx.reserve_amount:
        return None
    return deny(
        RejectReason.INSUFFICIENT_BUYING_POWER,
        asset=ctx.reserve_asset,
        required=ctx.reserve_amount,
        available=available,
    )


def check_position_limit(ctx: OrderContext) -> Denial | None:
    """The position this order could reach, with every open order filled, must stay in limit.

    BUY: position + open buys + quantity; SELL: the same towards the short side.
    """
    max_position = ctx.limits.position_limit(ctx.instrument.symbol)
    if max_position is None:
        return None
    position = ctx.position
    quantity = ctx.order.quantity
    if ctx.is_buy:
        open_orders = position.open_buy
        reach = position.quantity + open_orders + quantity
    else:
        open_orders = position.open_sell
        reach = open_orders + quantity - position.quantity
    if reach <= max_position:
        return None
    return deny(
        RejectReason.POSITION_LIMIT_EXCEEDED,
        max_position=max_position,
        position=position.quantity,
        open_orders=open_orders,
        quantity=quantity,
    )


def check_daily_loss(ctx: OrderContext) -> Denial | None:
    """Once today's PnL (realized + unrealized) reaches minus the limit, only reducing orders pass."""
    limit = ctx.limits.daily_loss_limit
    if limit is None:
        return None
    pnl = ctx.account.pnl_today(ctx.marks, ctx.now)
    if pnl > -limit or ctx.position.reduces(is_buy=ctx.is_buy, quantity=ctx.order.quantity):
        return None
    return deny(RejectReason.DAILY_LOSS_LIMIT_REACHED, daily_loss_limit=limit, pnl_today=pnl)


def check_concentration(ctx: OrderContext) -> Denial | None:
    """This symbol's share of the account's gross exposure must stay within the limit.

    A symbol's exposure is its worst reachable absolute position (open orders filled, this order
    included for its own symbol) at its mark; symbols without a mark count nothing, and this
    order's symbol is valued at the order's price before its first mark. The rule applies only
    when another symbol has exposure too: an account in a single symbol is not "concentrated",
    it is simply in that symbol (the position limit bounds it).
    """
    limit = ctx.limits.max_concentration
    if limit is None:
        return None
    symbol = ctx.instrument.symbol
    marks = ctx.marks
    others = _ZERO
    for other, position in ctx.account.positions.items():
        if other == symbol:
            continue
        mark = marks.get(other)
        if mark is not None:
            # Worst reachable absolute position: every open buy filled, or every open sell.
            held = position.quantity
            longest = held + position.open_buy
            shortest = held - position.open_sell
            others += (longest if longest >= -shortest else -shortest) * mark
    if not others:
        return None
    position = ctx.position
    quantity = ctx.order.quantity
    longest = position.quantity + position.open_buy
    shortest = position.quantity - position.open_sell
    if ctx.is_buy:
        longest += quantity
    else:
        shortest -= quantity
    price = ctx.price if ctx.reference is None else ctx.reference
    mine = (longest if longest >= -shortest else -shortest) * price
    gross = mine + others
    if mine <= limit * gross:
        return None
    return deny(
        RejectReason.CONCENTRATION_LIMIT_EXCEEDED,
        max_concentration=limit,
        share=(mine / gross).quantize(_SHARE_QUANTUM),
        exposure=mine,
        gross_exposure=gross,
    )


def check_velocity_orders(ctx: OrderContext) -> Denial | None:
    """At most ``max_orders_per_window`` orders accepted in the window ending now."""
    limits = ctx.limits
    max_orders = limits.max_orders_per_window
    if max_orders is None or limits.velocity_window_s is None:
        return None
    count, _ = ctx.account.velocity_in_window(ctx.now)
    if count < max_orders:
        return None
    return deny(
        RejectReason.VELOCITY_ORDERS_EXCEEDED,
        max_orders=max_orders,
        window_s=limits.velocity_window_s,
        orders_in_window=count,
    )


def check_velocity_notional(ctx: OrderContext) -> Denial | None:
    """At most ``max_notional_per_window`` accepted in the window ending now, this order included."""
    limits = ctx.limits
    max_notional = limits.max_notional_per_window
    if max_notional is None or limits.velocity_window_s is None:
        return None
    _, in_window = ctx.account.velocity_in_window(ctx.now)
    if in_window + ctx.notional <= max_notional:
        return None
    return deny(
        RejectReason.VELOCITY_NOTIONAL_EXCEEDED,
        max_notional=max_notional,
        window_s=limits.velocity_window_s,
        notional_in_window=in_window,
        notional=ctx.notional,
    )


CHECKS: tuple[Check, ...] = (
    check_kill_switch,
    check_instrument_trading,
    check_order_quantity,
    check_order_notional,
    check_price_collar,
    check_position_limit,
    check_buying_power,
    check_daily_loss,
    check_concentration,
    check_velocity_orders,
    check_velocity_notional,
)
"""Every pre-trade check, in the order the book runs them."""


def checks_for(limits: RiskLimits) -> tuple[Check, ...]:
    """The checks of ``CHECKS`` that can deny under ``limits``, in order.

    A check whose limit is off would only return None; leaving it out of the tuple an account
    runs saves a call per order on the hot path.
    """
    windowed = limits.velocity_window_s is not None
    switched_on: dict[Check, bool] = {
        check_order_quantity: limits.max_order_quantity is not None
        or bool(limits.symbol_max_order_quantity),
        check_order_notional: limits.max_order_notional is not None,
        check_price_collar: limits.price_collar is not None,
        check_position_limit: limits.max_position is not None or bool(limits.symbol_max_position),
        check_daily_loss: limits.daily_loss_limit is not None,
        check_concentration: limits.max_concentration is not None,
        check_velocity_orders: windowed and limits.max_orders_per_window is not None,
        check_velocity_notional: windowed and limits.max_notional_per_window is not None,
    }
    return tuple(check for check in CHECKS if switched_on.get(check, True))


def run_checks(ctx: OrderContext, checks: tuple[Check, ...] = CHECKS) -> tuple[Denial, ...]:
    """Every denial ``checks`` find for ``ctx``, in order (empty when the order passes)."""
    denials: list[Denial] | None = None
    for check in checks:
        denial = check(ctx)
        if denial is not None:
            if denials is None:
                denials = [denial]
            else:
                denials.append(denial)
    return () if denials is None else tuple(denials)
