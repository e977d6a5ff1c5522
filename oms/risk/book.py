"""The risk book: every account's balances, reservations, positions, limits and kill switch.

It is the only mutable risk state of a process, owned by one actor (the risk supervisor) and not
thread-safe. Calls are synchronous and pure apart from the book's own state; time comes in as
``now``. Hot paths (accept, book_fill, release) avoid copies and keep Decimal work minimal.

Rounding: the book never rounds an amount it moves. A fill moves exactly ``quantity * price`` of
quote and the fee as the venue reported it, so totals are conserved exactly. The only roundings
are the protection price of a MARKET order (onto the tick grid, towards the reference, so it stays
inside the collar) and a BUY's reservation (up to the quote precision of the instrument's tick,
so it always covers the exact cost at the protection price).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderType, Side
from oms.domain.errors import InvalidOrder, UnknownInstrument
from oms.domain.instruments import Instrument
from oms.risk.account import AccountSnapshot, AccountState, Balance, Bucket, day_index
from oms.risk.checks import (
    OrderContext,
    deny_no_market_price,
    deny_unknown_account,
    deny_unknown_instrument,
    run_checks,
)
from oms.risk.decision import Reservation, RiskDecision
from oms.risk.errors import (
    AccountExists,
    InsufficientFunds,
    InvalidFill,
    UnknownAccount,
    UnknownOrder,
)
from oms.risk.ledger import FEES, VENUE, LedgerEntry, fill_entry
from oms.risk.limits import DEFAULT_LIMITS, MARKET_PROTECTION_FALLBACK, RiskLimits, TradingState
from oms.risk.positions import PositionState
from oms.risk.reasons import Denial

_ZERO = Decimal(0)
_NO_DENIALS: tuple[Denial, ...] = ()
# Enum members bound once: attribute access on an enum class costs more than a global lookup.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
# Stand-in position for a symbol the account has never ordered in; checks only read it.
_FLAT = PositionState("")


class _Listing:
    """An instrument with the figures the hot path needs precomputed."""

    __slots__ = ("base", "instrument", "quote", "quote_quantum", "symbol", "tick")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.base = instrument.base
        self.quote = instrument.quote
        self.tick = instrument.tick_size
        exponent = instrument.tick_size.as_tuple().exponent
        assert isinstance(exponent, int), "a tick size is a finite number"
        self.quote_quantum = Decimal(1).scaleb(exponent)

    def protection(self, reference: Decimal, band: Decimal, *, is_buy: bool) -> Decimal:
        """The collar edge on the tick grid, rounded towards the reference (never below a tick)."""
        tick = self.tick
        if is_buy:
            return (reference * (1 + band) / tick).to_integral_value(ROUND_FLOOR) * tick
        edge = (reference * (1 - band) / tick).to_integral_value(ROUND_CEILING) * tick
        return edge if edge > 0 else tick


class _OpenOrder:
    """What the book keeps per accepted order; kept a while after release for late fills."""

    __slots__ = (
        "account",
        "asset",
        "decision",
        "fill_ids",
        "is_buy",
        "is_open",
        "listing",
        "order_id",
        "position",
        "remaining",
        "reserved",
    )

    def __init__(
        self,
        order_id: str,
        account: AccountState,
        listing: _Listing,
        position: PositionState,
        decision: RiskDecision,
        *,
        is_buy: bool,
        asset: str,
        quantity: Decimal,
        reserved: Decimal,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.listing = listing
        self.position = position
        self.decision = decision
        self.is_buy = is_buy
        self.asset = asset
        self.remaining = quantity  # unfilled quantity while open
        self.reserved = reserved  # what is left of the reservation
        self.is_open = True
        # Execution ids already booked; most orders have one fill, so a tuple, made on the first.
        self.fill_ids: tuple[str, ...] | None = None


class _Recent:
    """A bounded memory of finished orders: two generations, the older dropped when the newer fills.

    Keeps between ``size`` and ``2 * size`` entries without any per-entry bookkeeping, so replays
    and late fills are recognised for a long while and memory stays flat however long the
    process runs.
    """

    __slots__ = ("_new", "_old", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._new: dict[str, _OpenOrder | RiskDecision] = {}
        self._old: dict[str, _OpenOrder | RiskDecision] = {}

    def get(self, key: str) -> _OpenOrder | RiskDecision | None:
        """The remembered value, or None."""
        found = self._new.get(key)
        return self._old.get(key) if found is None else found

    def put(self, key: str, value: _OpenOrder | RiskDecision) -> None:
        """Remember ``value``; may forget the oldest generation."""
        self._new[key] = value
        if len(self._new) >= self._size:
            self._old = self._new
            self._new = {}


class RiskBook:
    """Accounts' balances, reservations, positions, limits and kill switch; runs every check."""

    def __init__(
        self,
        instruments: Mapping[str, Instrument],
        *,
        fee_rate: Decimal,
        default_limits: RiskLimits = DEFAULT_LIMITS,
        remember_orders: int = 100_000,
    ) -> None:
        self._listings = {
            symbol: _Listing(instrument) for symbol, instrument in instruments.items()
        }
        self._fee_rate = fee_rate
        self._fee_factor = 1 + fee_rate
        self._default_limits = default_limits
        self._accounts: dict[str, AccountState] = {}
        # Balances of every account, trading or ledger: account id -> asset -> bucket.
        self._balances: dict[str, dict[str, Bucket]] = {VENUE: {}, FEES: {}}
        self._marks: dict[str, Decimal] = {}
        self._mark_times: dict[str, float] = {}
        self._global_state = TradingState.ACTIVE
        self._open: dict[str, _OpenOrder] = {}
        self._recent = _Recent(remember_orders)

    # Accounts, limits, kill switch, marks

    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal],
        limits: RiskLimits | None = None,
    ) -> None:
        """Open a trading account with its deposits (available) and limits (default if None)."""
        if account_id in self._balances:
            raise AccountExists(f"account {account_id!r} already exists")
        for asset, amount in balances.items():
            if amount < 0:
                raise InvalidOrder(
                    f"opening balance of {asset} must not be negative", code="NEGATIVE_BALANCE"
                )
        buckets = {asset: Bucket(amount) for asset, amount in balances.items()}
        self._balances[account_id] = buckets
        self._accounts[account_id] = AccountState(
            account_id, buckets, self._default_limits if limits is None else limits
        )

    def has_account(self, account_id: str) -> bool:
        """True for an opened trading account."""
        return account_id in self._accounts

    def account_ids(self) -> Iterator[str]:
        """The ids of every trading account."""
        return iter(self._accounts)

    def set_limits(self, account_id: str, limits: RiskLimits) -> None:
        """Replace an account's limits; open orders keep what they reserved."""
        self._account(account_id).limits = limits

    def limits(self, account_id: str) -> RiskLimits:
        """An account's current limits."""
        return self._account(account_id).limits

    def set_trading_state(self, state: TradingState, account_id: str | None = None) -> None:
        """Flip the kill switch of one account, or the global one when ``account_id`` is None."""
        if account_id is None:
            self._global_state = state
        else:
            self._account(account_id).trading_state = state

    def trading_state(self, account_id: str | None = None) -> TradingState:
        """The kill-switch state of one account, or the global one."""
        if account_id is None:
            return self._global_state
        return self._account(account_id).trading_state

    def mark_price(self, symbol: str, price: Decimal, now: float) -> None:
        """Record the last price of ``symbol``: collar reference, MARKET notional and PnL mark."""
        if symbol not in self._listings:
            raise UnknownInstrument(f"{symbol!r} is not a listed instrument")
        if not price > 0:
            raise InvalidOrder(f"mark price {price} must be positive", code="INVALID_PRICE")
        self._marks[symbol] = price
        self._mark_times[symbol] = now

    def last_price(self, symbol: str) -> Decimal | None:
        """The last marked price of ``symbol``, or None."""
        return self._marks.get(symbol)

    def start_day(self, now: float, account_id: str | None = None) -> None:
        """Restart the daily-loss count at ``now`` for one account or all of them.

        Without this call the count restarts on the first order of each UTC day.
        """
        accounts = self._accounts.values() if account_id is None else (self._account(account_id),)
        for account in accounts:
            account.day = day_index(now)
            account.day_start_pnl = account.realized_pnl + account.unrealized_pnl(self._marks)

    # Orders

    def check(self, order: PlaceOrder, now: float) -> tuple[Denial, ...]:
        """Run every check on ``order`` without changing anything; empty when it would pass."""
        outcome = self._evaluate(order, now)
        return _NO_DENIALS if isinstance(outcome, OrderContext) else outcome

    def accept(self, order: PlaceOrder, now: float) -> RiskDecision:
        """Check ``order``; if nothing denies it, reserve for it and count it. Idempotent by id."""
        order_id = order.order_id
        record = self._open.get(order_id)
        if record is not None:
            return record.decision
        seen = self._recent.get(order_id)
        if seen is not None:
            return seen if isinstance(seen, RiskDecision) else seen.decision
        outcome = self._evaluate(order, now)
        if not isinstance(outcome, OrderContext):
            denied = RiskDecision(False, outcome, None)
            self._recent.put(order_id, denied)
            return denied
        ctx = outcome
        account = ctx.account
        amount = ctx.reserve_amount
        asset = ctx.reserve_asset
        bucket = account.buckets[asset]  # exists: buying power passed for a positive amount
        bucket.available -= amount
        bucket.reserved += amount
        position = ctx.position
        if position is _FLAT:
            position = account.positions[order.symbol] = PositionState(order.symbol)
        if ctx.is_buy:
            position.open_buy += order.quantity
        else:
            position.open_sell += order.quantity
        limits = ctx.limits
        if limits.tracks_velocity:
            account.count_velocity(now, ctx.notional)
        if account.day != day_index(now):
            account.roll_day(self._marks, now)
        decision = RiskDecision(
            True,
            _NO_DENIALS,
            Reservation(order_id, order.account_id, asset, amount, ctx.protection),
        )
        self._open[order_id] = _OpenOrder(
            order_id,
            account,
            self._listings[order.symbol],
            position,
            decision,
            is_buy=ctx.is_buy,
            asset=asset,
            quantity=order.quantity,
            reserved=amount,
        )
        account.open_orders += 1
        return decision

    def book_fill(self, fill: ApplyFill) -> LedgerEntry | None:
        """Book one execution as a balanced entry; None when this execution was already booked.

        The account's side of the fill is paid from the order's reservation first; if a fill
        costs more than is left reserved (it should not, given the protection price) the rest
        comes from available, and ``InsufficientFunds`` is raised, booking nothing, if that is
        not enough.
        """
        record = self._record_for_fill(fill)
        fill_id = fill.command_id
        fill_ids = record.fill_ids
        if fill_ids is not None and fill_id in fill_ids:
            return None
        quantity = fill.quantity
        price = fill.price
        fee = fill.fee
        if not (quantity > 0 and price > 0 and fee >= 0):
            raise InvalidFill(f"fill {fill_id}: quantity={quantity} price={price} fee={fee}")
        account = record.account
        listing = record.listing
        is_buy = record.is_buy
        cost = quantity * price
        need = cost + fee if is_buy else quantity  # what the account gives up of ``asset``
        reserved = record.reserved
        from_reserved = need if need <= reserved else reserved
        bucket = account.buckets[record.asset]  # created when the order reserved
        self._require_funds(record, fill_id, need - from_reserved, fee - cost)
        # Checked; now change. First the reservation turns back into available, then the
        # entry's postings move available balances.
        if from_reserved:
            bucket.reserved -= from_reserved
            bucket.available += from_reserved
            record.reserved = reserved - from_reserved
        entry = fill_entry(
            fill_id,
            record.order_id,
            account.account_id,
            is_buy=is_buy,
            base=listing.base,
            quote=listing.quote,
            quantity=quantity,
            cost=cost,
            fee=fee,
        )
        self._post(entry)
        position = record.position
        remaining = record.remaining
        if remaining:
            filled = quantity if quantity <= remaining else remaining
            record.remaining = remaining - filled
            if is_buy:
                position.open_buy -= filled
            else:
                position.open_sell -= filled
        account.realized_pnl += position.apply_fill(
            is_buy=is_buy, quantity=quantity, price=price, fee=fee
        )
        record.fill_ids = (fill_id,) if fill_ids is None else (*fill_ids, fill_id)
        return entry

    def release(self, order_id: str) -> Decimal:
        """Give what is left of an order's reservation back to available; zero if nothing is."""
        record = self._open.pop(order_id, None)
        if record is None:
            return _ZERO
        left = record.reserved
        if left:
            bucket = record.account.buckets[record.asset]
            bucket.reserved -= left
            bucket.available += left
            record.reserved = _ZERO
        remaining = record.remaining
        if remaining:
            if record.is_buy:
                record.position.open_buy -= remaining
            else:
                record.position.open_sell -= remaining
            record.remaining = _ZERO
        record.is_open = False
        record.account.open_orders -= 1
        self._recent.put(order_id, record)
        return left

    def open_reservation(self, order_id: str) -> Reservation | None:
        """What remains reserved for an open order, or None when it is not open."""
        record = self._open.get(order_id)
        if record is None:
            return None
        reservation = record.decision.reservation
        assert reservation is not None, "an open order was accepted"
        return Reservation(
            order_id,
            record.account.account_id,
            record.asset,
            record.reserved,
            reservation.protection_price,
        )

    def open_order_count(self, account_id: str) -> int:
        """How many accepted orders of the account are not yet released."""
        return self._account(account_id).open_orders

    # Views

    def snapshot(self, account_id: str) -> AccountSnapshot:
        """An immutable view of one trading account."""
        account = self._account(account_id)
        marks = self._marks
        positions = {
            symbol: position.snapshot(marks.get(symbol))
            for symbol, position in account.positions.items()
        }
        return AccountSnapshot(
            account_id,
            self.balances(account_id),
            positions,
            account.trading_state,
            account.limits,
            account.realized_pnl,
            sum((p.unrealized_pnl for p in positions.values()), _ZERO),
        )

    def balances(self, account_id: str) -> dict[str, Balance]:
        """Balances of any account, ``VENUE`` and ``FEES`` included."""
        buckets = self._balances.get(account_id)
        if buckets is None:
            raise UnknownAccount(f"no account {account_id!r}")
        return {asset: bucket.snapshot() for asset, bucket in buckets.items()}

    def totals(self) -> dict[str, Decimal]:
        """Per asset, available plus reserved over every account including VENUE and FEES."""
        totals: dict[str, Decimal] = {}
        for buckets in self._balances.values():
            for asset, bucket in buckets.items():
                totals[asset] = totals.get(asset, _ZERO) + bucket.available + bucket.reserved
        return totals

    # Internals

    def _account(self, account_id: str) -> AccountState:
        account = self._accounts.get(account_id)
        if account is None:
            raise UnknownAccount(f"no trading account {account_id!r}")
        return account

    def _record_for_fill(self, fill: ApplyFill) -> _OpenOrder:
        """The open order a fill belongs to, or a recently released one (a late fill)."""
        record = self._open.get(fill.order_id)
        if record is not None:
            return record
        seen = self._recent.get(fill.order_id)
        if isinstance(seen, _OpenOrder):
            return seen  # booked against available: nothing is reserved any more
        raise UnknownOrder(f"no accepted order {fill.order_id!r} for fill {fill.command_id}")

    @staticmethod
    def _require_funds(
        record: _OpenOrder, fill_id: str, beyond_reserved: Decimal, fee_over_proceeds: Decimal
    ) -> None:
        """Raise ``InsufficientFunds`` if a fill would take an available balance below zero."""
        account = record.account
        if beyond_reserved > 0 and account.available(record.asset) < beyond_reserved:
            raise InsufficientFunds(
                f"fill {fill_id} needs {beyond_reserved} {record.asset} beyond its reservation, "
                f"{account.available(record.asset)} available"
            )
        # A SELL pays its fee out of the proceeds; only a fee above them touches available.
        if not record.is_buy and fee_over_proceeds > 0:
            quote = record.listing.quote
            if account.available(quote) < fee_over_proceeds:
                raise InsufficientFunds(
                    f"fill {fill_id}: fee exceeds proceeds by {fee_over_proceeds} {quote}, "
                    f"{account.available(quote)} available"
                )

    def _post(self, entry: LedgerEntry) -> None:
        """Apply an entry's postings to available balances (creating buckets as assets appear)."""
        balances = self._balances
        for account_id, asset, amount in entry.postings:
            holder = balances[account_id]
            target = holder.get(asset)
            if target is None:
                holder[asset] = Bucket(amount)
            else:
                target.available += amount

    def _evaluate(self, order: PlaceOrder, now: float) -> OrderContext | tuple[Denial, ...]:
        """Pass the gates, build the context and run every check: the context, or the denials."""
        account = self._accounts.get(order.account_id)
        if account is None:
            return (deny_unknown_account(order.account_id),)
        symbol = order.symbol
        listing = self._listings.get(symbol)
        if listing is None:
            return (deny_unknown_instrument(symbol),)
        quantity = order.quantity
        if not quantity > 0:
            raise InvalidOrder(f"quantity {quantity} must be positive", code="INVALID_QUANTITY")
        is_buy = order.side == _BUY
        reference = self._marks.get(symbol)
        if order.type == _MARKET:
            if reference is None:
                return (deny_no_market_price(symbol),)
            band = account.limits.price_collar
            price = reference
            protection = listing.protection(
                reference, MARKET_PROTECTION_FALLBACK if band is None else band, is_buy=is_buy
            )
        else:
            price = protection = _limit_price(order)
        if is_buy:
            asset = listing.quote
            amount = (quantity * protection * self._fee_factor).quantize(
                listing.quote_quantum, ROUND_CEILING
            )
        else:
            asset = listing.base
            amount = quantity
        ctx = OrderContext(
            order,
            listing.instrument,
            account,
            account.positions.get(symbol, _FLAT),
            is_buy=is_buy,
            reference=reference,
            price=price,
            protection=protection,
            notional=quantity * price,
            reserve_asset=asset,
            reserve_amount=amount,
            global_state=self._global_state,
            marks=self._marks,
            now=now,
        )
        return run_checks(ctx) or ctx


def _limit_price(order: PlaceOrder) -> Decimal:
    """The price of a LIMIT order; one without a positive price is invalid, not a risk matter."""
    price = order.price
    if price is None or not price > 0:
        raise InvalidOrder(
            f"LIMIT order {order.order_id} needs a positive price", code="INVALID_PRICE"
        )
    return price
