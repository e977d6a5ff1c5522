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

from collections.abc import Iterable, Iterator, Mapping
from decimal import ROUND_CEILING, Decimal

from oms.domain.accounts import FEES, VENUE, ReservedAccountId, is_reserved
from oms.domain.commands import ApplyFill, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.errors import (
    AccountExists,
    InsufficientFunds,
    InvalidFill,
    InvalidOrder,
    RiskError,
    UnknownAccount,
    UnknownInstrument,
    UnknownOrder,
)
from oms.domain.instruments import Instrument
from oms.domain.limits import DEFAULT_LIMITS, MARKET_PROTECTION_FALLBACK, RiskLimits, TradingState
from oms.domain.reasons import Denial, RejectReason, deny
from oms.risk.account import (
    SECONDS_PER_DAY,
    AccountSnapshot,
    AccountState,
    Balance,
    Bucket,
    day_index,
)
from oms.risk.checkpoint import LedgerCheckpoint, export_accounts, load_accounts
from oms.risk.checks import (
    Check,
    OrderContext,
    check_velocity_notional,
    check_velocity_orders,
    checks_for,
    deny_no_market_price,
    deny_unknown_account,
    deny_unknown_instrument,
    run_checks,
)
from oms.risk.decision import Reservation, RiskDecision
from oms.risk.global_verdicts import GlobalVerdicts
from oms.risk.ledger import LedgerEntry, fill_entry
from oms.risk.positions import PositionState
from oms.risk.records import Listing, OpenOrder, Recent

_ZERO = Decimal(0)
_NO_DENIALS: tuple[Denial, ...] = ()
# Builds a NamedTuple straight from a tuple, skipping its Python-level ``__new__`` (twice as fast).
_new = tuple.__new__
# Enum members bound once: attribute access on an enum class costs more than a global lookup.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_STOP_MARKET = OrderType.STOP_MARKET
# The checks an amend does not run again: it is the same order, not one more.
_NEW_ORDER_ONLY = (check_velocity_orders, check_velocity_notional)
# Stand-in position for a symbol the account has never ordered in; checks only read it.
_FLAT = PositionState("")


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
        self._instruments = instruments
        self._remember_orders = remember_orders
        # A BUY reserves quantity * protection price * (1 + fee rate).
        self._fee_factor = 1 + fee_rate
        self._default_limits = default_limits
        # Redis's answers on the firm-wide caps (``oms.risk.global_verdicts``): inactive, and
        # asked nothing, until a cap is set. Outlives ``clear``: it belongs to the replica.
        self.global_verdicts = GlobalVerdicts()
        self._marks: dict[str, Decimal] = {}
        self._mark_times: dict[str, float] = {}
        self.clear()

    def clear(self) -> None:
        """Forget every account, order and ledger balance (the marks stay: they are the market's).

        For a replica whose share of the accounts changed: it rebuilds the ones it owns from the
        store, with the ``VENUE`` and ``FEES`` sides of their fills only.
        """
        # Balances of every account, trading or ledger: account id -> asset -> bucket.
        self._balances: dict[str, dict[str, Bucket]] = {VENUE: {}, FEES: {}}
        self._listings = {
            symbol: Listing(instrument, self._balances[VENUE], self._balances[FEES])
            for symbol, instrument in self._instruments.items()
        }
        self._accounts: dict[str, AccountState] = {}
        self._global_state = TradingState.ACTIVE
        # Accounts whose kill switch is not ACTIVE: few, so /metrics can copy them from another
        # thread (a dict copy is one step under the GIL) instead of walking every account.
        self._switched: dict[str, TradingState] = {}
        self._open: dict[str, OpenOrder] = {}
        self._recent = Recent(self._remember_orders)

    # Accounts, limits, kill switch, marks

    def open_account(
        self,
        account_id: str,
        balances: Mapping[str, Decimal],
        limits: RiskLimits | None = None,
    ) -> None:
        """Open a trading account with its deposits (available) and limits (default if None).

        The ledger's own ``VENUE`` and ``FEES`` exist already (``AccountExists``); any other
        spelling of an id the system keeps for itself raises ``ReservedAccountId``. The doors
        refuse both first: this keeps a stored one out too.
        """
        if account_id in self._balances:
            raise AccountExists(f"account {account_id!r} already exists")
        if is_reserved(account_id):
            raise ReservedAccountId(f"{account_id!r} is reserved by the system")
        for asset, amount in balances.items():
            if amount < 0:
                raise RiskError(
                    f"opening balance of {asset} must not be negative", code="NEGATIVE_BALANCE"
                )
        buckets = {asset: Bucket(amount) for asset, amount in balances.items()}
        self._balances[account_id] = buckets
        chosen = self._default_limits if limits is None else limits
        self._accounts[account_id] = AccountState(account_id, buckets, chosen, checks_for(chosen))

    def has_account(self, account_id: str) -> bool:
        """True for an opened trading account."""
        return account_id in self._accounts

    def account_ids(self) -> Iterator[str]:
        """The ids of every trading account."""
        return iter(self._accounts)

    def set_limits(self, account_id: str, limits: RiskLimits) -> None:
        """Replace an account's limits; open orders keep what they reserved."""
        self._account(account_id).use_limits(limits, checks_for(limits))

    def limits(self, account_id: str) -> RiskLimits:
        """An account's current limits."""
        return self._account(account_id).limits

    def set_trading_state(self, state: TradingState, account_id: str | None = None) -> None:
        """Flip the kill switch of one account, or the global one when ``account_id`` is None."""
        if account_id is None:
            self._global_state = state
        else:
            self._account(account_id).trading_state = state
            if state is TradingState.ACTIVE:
                self._switched.pop(account_id, None)
            else:
                self._switched[account_id] = state

    def kill_switches(self) -> tuple[TradingState, dict[str, TradingState]]:
        """The global switch and every account not ACTIVE; safe to call from any thread."""
        return self._global_state, self._switched.copy()

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
            raise RiskError(f"mark price {price} must be positive", code="INVALID_MARK")
        self._marks[symbol] = price
        self._mark_times[symbol] = now

    def last_price(self, symbol: str) -> Decimal | None:
        """The last marked price of ``symbol``, or None."""
        return self._marks.get(symbol)

    def marked_at(self, symbol: str) -> float | None:
        """When ``symbol`` was last marked (epoch seconds), or None: lets a caller spot stale marks."""
        return self._mark_times.get(symbol)

    def start_day(self, now: float, account_id: str | None = None) -> None:
        """Restart the daily-loss count at ``now`` for one account or all of them.

        Without this call the count restarts on the first order of each UTC day.
        """
        accounts = self._accounts.values() if account_id is None else (self._account(account_id),)
        for account in accounts:
            account.day = day_index(now)
            account.day_start_pnl = account.realized_pnl + account.unrealized_pnl(self._marks)

    def count_accepted(self, account_id: str, at: float, notional: Decimal) -> bool:
        """Count again an order accepted at ``at`` (recovery): its velocity window entry and
        trading day, as ``accept`` did. False when the account is not open.

        The day only moves forward: an acceptance older than the day the checkpoint holds
        changes nothing there.
        """
        account = self._accounts.get(account_id)
        if account is None:
            return False
        if account.counts_velocity:
            account.count_velocity(at, notional)
        day = account.day
        if day is None or day_index(at) > day:
            account.roll_day(self._marks, at)
        return True

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
        verdicts = self.global_verdicts
        if verdicts.active:
            # Taken whatever the checks said: Redis reserved before they ran, and the order's
            # end (its rejection here too) gives the reservation back.
            cap = verdicts.take(order_id)
            if cap is not None and isinstance(outcome, OrderContext):
                outcome = (deny(cap, order_id=order_id),)
        if not isinstance(outcome, OrderContext):
            denied = RiskDecision(False, outcome, None)
            self._recent.put(order_id, denied)
            return denied
        ctx = outcome
        account = ctx.account
        amount = ctx.reserve_amount
        position = ctx.position
        if position is _FLAT:
            position = account.positions[order.symbol] = PositionState(order.symbol)
        # Built from tuples directly: see ``_new``.
        decision = _new(
            RiskDecision,
            (
                True,
                _NO_DENIALS,
                _new(
                    Reservation,
                    (order_id, order.account_id, ctx.reserve_asset, amount, ctx.protection),
                ),
            ),
        )
        is_buy = ctx.is_buy
        record = self._open[order_id] = OpenOrder(  # positionally: see _evaluate
            order_id,
            account,
            self._listings[order.symbol],
            position,
            is_buy,  # is_buy
            order.quantity,  # quantity
            amount,  # reserved
            ctx.protection,  # protection
        )
        bucket = record.quote if is_buy else record.base
        bucket.available -= amount
        bucket.reserved += amount
        if is_buy:
            position.open_buy += order.quantity
        else:
            position.open_sell += order.quantity
        account.open_orders += 1
        if account.counts_velocity:
            account.count_velocity(now, ctx.notional)
        if account.day != int(now // SECONDS_PER_DAY):
            account.roll_day(self._marks, now)
        return decision

    def book_fill(self, fill: ApplyFill) -> LedgerEntry | None:
        """Book one execution as a balanced entry; None when this execution was already booked.

        The account's side of the fill is paid from the order's reservation first; if a fill
        costs more than is left reserved (it should not, given the protection price) the rest
        comes from available, and ``InsufficientFunds`` is raised, booking nothing, if that is
        not enough. Each amount moved is one posting of the entry and its mirror.
        """
        record = self.post_fill(fill)
        if record is None:
            return None
        listing = record.listing
        return fill_entry(
            fill.command_id,
            record.order_id,
            record.account.account_id,
            is_buy=record.is_buy,
            base=listing.base,
            quote=listing.quote,
            quantity=fill.quantity,
            cost=fill.quantity * fill.price,
            fee=fill.fee,
        )

    def post_fill(self, fill: ApplyFill) -> OpenOrder | None:
        """``book_fill`` without building the entry: the order's record, None if already booked.

        For a caller that keeps no entry (the supervisor): the balances move exactly as
        ``book_fill`` moves them, and the entry, a view of those moves, is not made.
        """
        record = self._open.get(fill.order_id)
        if record is None:
            record = self._late_record(fill)
        fill_id = fill.command_id
        fill_ids = record.fill_ids
        if fill_ids is not None and fill_id in fill_ids:
            return None
        quantity = fill.quantity
        price = fill.price
        fee = fill.fee
        if not (quantity > 0 and price > 0 and fee >= 0):
            raise InvalidFill(f"fill {fill_id}: quantity={quantity} price={price} fee={fee}")
        is_buy = record.is_buy
        cost = quantity * price
        need = cost + fee if is_buy else quantity  # what the account pays out of the reservation
        reserved = record.reserved
        from_reserved = need if need <= reserved else reserved
        if need > from_reserved or (fee > cost and not is_buy):
            _require_funds(record, fill_id, need - from_reserved, fee - cost)
        # Checked; now change. The reservation pays first (reserved -> available), then the
        # transfers of the entry move available balances.
        base, quote, listing = record.base, record.quote, record.listing
        if is_buy:
            if from_reserved:
                quote.reserved -= from_reserved
                record.reserved = reserved - from_reserved
            quote.available += from_reserved - need  # pays cost + fee
            base.available += quantity
            listing.venue_base.available -= quantity
            listing.venue_quote.available += cost
        else:
            if from_reserved:
                base.reserved -= from_reserved
                record.reserved = reserved - from_reserved
            base.available += from_reserved - need  # gives the quantity
            quote.available += cost - fee
            listing.venue_base.available += quantity
            listing.venue_quote.available -= cost
        if fee:
            listing.fees_quote.available += fee
        position = record.position
        remaining = record.remaining
        if remaining:
            filled = quantity if quantity <= remaining else remaining
            record.remaining = remaining - filled
            if is_buy:
                position.open_buy -= filled
            else:
                position.open_sell -= filled
        account = record.account
        account.realized_pnl += position.apply_fill(
            is_buy=is_buy, quantity=quantity, price=price, fee=fee
        )
        record.fill_ids = (fill_id,) if fill_ids is None else (*fill_ids, fill_id)
        return record

    def release(self, order_id: str) -> Decimal:
        """Give what is left of an order's reservation back to available; zero if nothing is."""
        record = self._open.pop(order_id, None)
        if record is None:
            return _ZERO
        left = record.reserved
        if left:
            bucket = record.quote if record.is_buy else record.base
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
        record.account.open_orders -= 1
        self._recent.put(order_id, record)
        return left

    def reserve_amend(
        self, order_id: str, delta: Decimal, price: Decimal, now: float
    ) -> Decimal | tuple[Denial, ...]:
        """Check an open LIMIT order as amended (``delta`` more quantity, negative for less, at
        ``price``) and, if nothing denies it, reserve for the larger of its old and new terms:
        the venue may fill it on either until it has changed it. The protection price of the
        new terms, or the denials (nothing changed then).

        The checks see the order's unfilled part as amended, in place of what it reserves and
        holds open now; velocity is not counted again (an amend is not a new order). Raises
        ``UnknownOrder`` when the order is not open, ``InvalidOrder`` (QUANTITY_BELOW_FILLED)
        when the new quantity is not above what the book has booked for it.
        """
        record = self._open.get(order_id)
        if record is None:
            raise UnknownOrder(f"no open order {order_id!r} to amend")
        remaining = record.remaining + delta
        if not remaining > 0:
            raise InvalidOrder(
                f"order {order_id}: {-delta} less leaves nothing unfilled",
                code="QUANTITY_BELOW_FILLED",
            )
        if self.global_verdicts.active and (delta > 0 or price > record.protection):
            # The firm-wide caps hold what the order was placed with (``oms.engine.global_gate``
            # reserves before the engine, and an amend reaches only the engine): more quantity,
            # or a higher price, would go uncounted there. Fail closed.
            return (deny(RejectReason.GLOBAL_LIMITS_UNAVAILABLE, order_id=order_id),)
        account = record.account
        listing = record.listing
        is_buy = record.is_buy
        amended = PlaceOrder(
            f"amend:{order_id}", order_id, "", account.account_id, listing.symbol,
            Side.BUY if is_buy else Side.SELL, OrderType.LIMIT, remaining, price,
            TimeInForce.GTC, now,
        )  # fmt: skip
        checks = tuple(check for check in account.checks if check not in _NEW_ORDER_ONLY)
        # The record's own reservation and open quantity are lifted while the checks run (one
        # thread owns the book: nobody sees it in between), so they count the new terms only.
        bucket = record.quote if is_buy else record.base
        position = record.position
        reserved, held = record.reserved, record.remaining
        bucket.reserved -= reserved
        bucket.available += reserved
        if is_buy:
            position.open_buy -= held
        else:
            position.open_sell -= held
        try:
            outcome = self._evaluate(amended, now, checks)
        finally:
            bucket.available -= reserved
            bucket.reserved += reserved
            if is_buy:
                position.open_buy += held
            else:
                position.open_sell += held
        if not isinstance(outcome, OrderContext):
            return outcome
        extra = outcome.reserve_amount - reserved
        if extra > 0:
            if bucket.available < extra:  # lifted, it was checked with its own reservation
                return (deny(RejectReason.INSUFFICIENT_BUYING_POWER, required=extra,
                             available=bucket.available),)  # fmt: skip
            bucket.available -= extra
            bucket.reserved += extra
            record.reserved = reserved + extra
            record.amount += extra
        return outcome.protection

    def commit_amend(
        self, order_id: str, delta: Decimal, price: Decimal, venue_remaining: Decimal | None
    ) -> Decimal:
        """The amend is done (``delta`` zero: refused): the order's unfilled part changes by
        ``delta`` at ``price``, and its reservation is trimmed to what its fills can still
        cost. Gives back what was trimmed (zero when the order is no longer open).

        ``venue_remaining``: what the venue holds after the amend; the rest of the unfilled
        part was filled before it, on the old terms, and its fills are still to be booked
        here. None: not known, and every unfilled unit is counted at the dearer price.
        """
        record = self._open.get(order_id)
        if record is None:
            return _ZERO
        old_price = record.protection
        remaining = record.remaining + delta
        remaining = remaining if remaining > 0 else _ZERO
        position = record.position
        if record.is_buy:
            position.open_buy += remaining - record.remaining
        else:
            position.open_sell += remaining - record.remaining
        record.remaining = remaining
        record.protection = price
        if not record.is_buy:
            need = remaining
        else:
            quantum, factor = record.listing.quote_quantum, self._fee_factor
            if venue_remaining is None:
                dearer = price if price > old_price else old_price
                need = (remaining * dearer * factor).quantize(quantum, ROUND_CEILING)
            else:
                before = remaining - venue_remaining
                before = before if before > 0 else _ZERO
                need = (venue_remaining * price * factor).quantize(quantum, ROUND_CEILING) + (
                    before * old_price * factor
                ).quantize(quantum, ROUND_CEILING)
        trim = record.reserved - need
        if not trim > 0:
            return _ZERO
        bucket = record.reserve_bucket
        bucket.reserved -= trim
        bucket.available += trim
        record.reserved = need
        record.amount -= trim
        return trim

    def restore_open(
        self,
        order_id: str,
        account_id: str,
        symbol: str,
        *,
        side: Side,
        quantity: Decimal,
        protection: Decimal,
        reserved: Decimal | None = None,
    ) -> Reservation:
        """Re-create an accepted order's record after a restart, as ``accept`` left it.

        No check runs and nothing is counted (velocity, day): the order was accepted before
        the restart. ``reserved`` None reserves what ``accept`` did (a BUY: quantity times
        ``protection`` times one plus the fee rate, rounded up to the quote grid; a SELL: the
        quantity); recovery passes the exact cost of the fills for an order that has ended.
        Then ``post_fill`` replays its stored fills and ``release`` ends it, as live.
        Raises ``UnknownAccount``, ``UnknownInstrument``, or ``RiskError`` if already open.
        """
        if order_id in self._open:
            raise RiskError(f"order {order_id} is already open", code="ALREADY_OPEN")
        account = self._account(account_id)
        listing = self._listings.get(symbol)
        if listing is None:
            raise UnknownInstrument(f"{symbol!r} is not a listed instrument")
        is_buy = side == _BUY
        if reserved is None:
            reserved = (
                (quantity * protection * self._fee_factor).quantize(
                    listing.quote_quantum, ROUND_CEILING
                )
                if is_buy
                else quantity
            )
        position = account.positions.get(symbol)
        if position is None:
            position = account.positions[symbol] = PositionState(symbol)
        record = self._open[order_id] = OpenOrder(
            order_id, account, listing, position, is_buy, quantity, reserved, protection
        )
        bucket = record.quote if is_buy else record.base
        bucket.available -= reserved
        bucket.reserved += reserved
        if is_buy:
            position.open_buy += quantity
        else:
            position.open_sell += quantity
        account.open_orders += 1
        return record.reservation()

    def is_open(self, order_id: str) -> bool:
        """True while an accepted order is not yet released."""
        return order_id in self._open

    def open_reservation(self, order_id: str) -> Reservation | None:
        """What remains reserved for an open order, or None when it is not open."""
        record = self._open.get(order_id)
        if record is None:
            return None
        return record.reservation()

    def open_order_count(self, account_id: str) -> int:
        """How many accepted orders of the account are not yet released."""
        return self._account(account_id).open_orders

    # Checkpoints

    def export_ledger(self, account_ids: Iterable[str]) -> LedgerCheckpoint:
        """The figures of these trading accounts and their open records (``oms.risk.checkpoint``).

        Take it when nothing is in flight (the engine does, at an idle point), so that it agrees
        with what the store holds of their orders.
        """
        return export_accounts((self._account(a) for a in account_ids), self._open.values())

    def load_ledger(
        self, checkpoint: LedgerCheckpoint, openings: Mapping[str, Mapping[str, Decimal]]
    ) -> None:
        """Put a checkpoint on accounts just opened with ``openings`` (their opening balances):
        balances, positions, PnL and open records as they were, and their share of ``VENUE``
        and ``FEES``. Raises ``UnknownAccount`` or ``RiskError`` and changes nothing."""
        load_accounts(
            checkpoint,
            accounts=self._accounts,
            balances=self._balances,
            records=self._open,
            listings=self._listings,
            openings=openings,
        )

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

    def _late_record(self, fill: ApplyFill) -> OpenOrder:
        """A recently released order a late fill belongs to (nothing is reserved for it any more)."""
        seen = self._recent.get(fill.order_id)
        if isinstance(seen, OpenOrder):
            return seen
        raise UnknownOrder(f"no accepted order {fill.order_id!r} for fill {fill.command_id}")

    def _evaluate(
        self, order: PlaceOrder, now: float, checks: tuple[Check, ...] | None = None
    ) -> OrderContext | tuple[Denial, ...]:
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
        if order.type is _STOP_MARKET:
            # Reserved like the MARKET order it becomes, priced where it will trigger: its
            # protection is the collar's edge around its stop price.
            stop = order.stop_price
            if stop is None or not stop > 0:
                raise InvalidOrder(
                    f"STOP_MARKET order {order.order_id} needs a stop price",
                    code="STOP_PRICE_REQUIRED",
                )
            band = account.limits.price_collar
            price = stop
            protection = listing.protection(
                stop, MARKET_PROTECTION_FALLBACK if band is None else band, is_buy=is_buy
            )
        elif order.type == _MARKET:
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
        # Positionally, in the order of OrderContext's parameters: keywords cost about 0.6 us
        # more per order here.
        ctx = OrderContext(
            order,
            listing.instrument,
            account,
            account.positions.get(symbol, _FLAT),
            is_buy,  # is_buy
            reference,  # reference
            price,  # price
            protection,  # protection
            quantity * price,  # notional
            asset,  # reserve_asset
            amount,  # reserve_amount
            self._global_state,  # global_state
            self._marks,  # marks
            now,  # now
        )
        return run_checks(ctx, account.checks if checks is None else checks) or ctx


def _require_funds(
    record: OpenOrder, fill_id: str, beyond_reserved: Decimal, fee_over_proceeds: Decimal
) -> None:
    """Raise ``InsufficientFunds`` if a fill would take an available balance below zero."""
    bucket = record.reserve_bucket
    if beyond_reserved > 0 and bucket.available < beyond_reserved:
        raise InsufficientFunds(
            f"fill {fill_id} needs {beyond_reserved} {record.reserve_asset} beyond its "
            f"reservation, {bucket.available} available"
        )
    # A SELL pays its fee out of the proceeds; only a fee above them touches available.
    if not record.is_buy and fee_over_proceeds > record.quote.available:
        raise InsufficientFunds(
            f"fill {fill_id}: fee exceeds proceeds by {fee_over_proceeds} {record.listing.quote}, "
            f"{record.quote.available} available"
        )


def _limit_price(order: PlaceOrder) -> Decimal:
    """The price of a LIMIT order; one without a positive price is invalid, not a risk matter."""
    price = order.price
    if price is None or not price > 0:
        raise InvalidOrder(
            f"LIMIT order {order.order_id} needs a positive price", code="INVALID_PRICE"
        )
    return price
