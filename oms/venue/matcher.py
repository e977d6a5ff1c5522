"""The simulated matcher: fills arriving orders against the book and keeps the resting ones.

Liquidity rules (the simulation's contract; tests hold it to these):

- **Arrival.** An arriving order takes from the book snapshot it is handed, best level first,
  at each level's price, never beyond its protection price (nor its limit price), at most the
  level's displayed quantity (floored to the lot grid). The snapshot is not changed: every
  arrival sees the displayed depth whole, as if the venue refilled it between arrivals. The
  shared ``MarketData`` book is never mutated.
- **Resting.** A GTC LIMIT remainder rests at its price (the stricter of limit and protection,
  on the tick grid: down for a BUY, up for a SELL). Orders of the venue's customers never match
  one another; all liquidity comes from the feed.
- **Ticks.** Each tick brings fresh liquidity: its ask levels for resting BUYs, its bid levels
  for resting SELLs. Resting orders are served in price-time priority, and one order may take
  from every level of the tick that crosses its price (a BUY at P from asks priced <= P), each
  level's quantity shared once among all resting orders of that tick. A resting order fills
  at **its own price** (it is the maker the market traded through), with one execution per
  order per tick. So, as long as the market stays through an order's price, every tick drains
  more of it until it is gone.

The resting index is one binary heap of ints per symbol and side. Each int packs the price in
ticks (negated for BUYs, so the best price is the smallest key) above a sequence number (time
priority, unique in the matcher, so the key is unique too). The key maps to the order's record,
a plain 4-tuple ``(order_id, account_id, remaining, fills)``: a tuple of strings, a ``Decimal``
and an int is dropped from the garbage collector's tracking, so a million resting orders add
nothing to every collection's work, and the order's own ``Decimal`` quantity is referenced, not
copied, until a fill replaces the record. That is about 200 bytes per resting order in all.
Cancels are lazy: the key leaves the maps at once and its heap entry is skipped when it reaches
the top; the heaps are rebuilt once skipped entries outnumber live ones.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from decimal import ROUND_DOWN, Decimal
from heapq import heapify, heappop, heappush

from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.errors import UnknownInstrument
from oms.domain.instruments import DEFAULT_INSTRUMENTS, Instrument
from oms.domain.order_terms import STOPS, stop_on_wrong_side
from oms.marketdata.book import L2Book
from oms.marketdata.tick import BookLevel, Tick
from oms.venue.model import Execution, MatchResult, Outcome, VenueError, VenueOrder

# Low bits of a heap key hold the sequence number: 2**40 rests before it would reach the price
# bits, far beyond any process lifetime.
_SEQ_BITS = 40
# Rebuilding the heaps only pays once they hold this many cancelled entries.
_MIN_STALE_TO_COMPACT = 1024
_NO_EXECUTIONS: tuple[Execution, ...] = ()
# Members bound once: an attribute of an Enum class costs about 0.13 us to read, a global a
# tenth of that, and every arrival reads several.
_BUY = Side.BUY
_MARKET = OrderType.MARKET
_LIMIT = OrderType.LIMIT
_GTC = TimeInForce.GTC
_GTD = TimeInForce.GTD
_FOK = TimeInForce.FOK
_FILLED = Outcome.FILLED
_RESTING = Outcome.RESTING
_CANCELLED_REMAINDER = Outcome.CANCELLED_REMAINDER
# Builds a MatchResult (a NamedTuple) from a tuple of its fields, without its Python __new__.
_new = tuple.__new__


class _Symbol:
    """Per-instrument grids and the two resting heaps."""

    __slots__ = ("buys", "fee_quantum", "lot_size", "sells", "tick_size")

    def __init__(self, instrument: Instrument) -> None:
        self.tick_size = instrument.tick_size
        self.lot_size = instrument.lot_size
        # Fees are in the quote asset, to the precision of the price grid: ``quantize`` reads
        # only the exponent of its argument, so the tick size itself is that quantum.
        self.fee_quantum = instrument.tick_size
        self.buys: list[int] = []
        self.sells: list[int] = []


# A resting order's record: (order_id, account_id, remaining, fills). ``fills`` counts its
# executions so far, so the next execution id is f"{order_id}:{fills + 1}".
_Record = tuple[str, str, Decimal, int]


class Matcher:
    """A simulated venue for the listed ``instruments``. Pure, single-threaded, no I/O.

    Fees are ``quantity * price * fee_rate`` rounded down to the quote grid's precision:
    rounding down means the fees of several partial fills never add up to more than the risk
    reservation (which holds ``quantity * protection_price * (1 + fee_rate)``).
    """

    __slots__ = ("_by_key", "_fee_rate", "_key_of", "_seq", "_stale", "_stops", "_symbols")

    def __init__(
        self,
        fee_rate: Decimal,
        instruments: Iterable[Instrument] | Mapping[str, Instrument] = DEFAULT_INSTRUMENTS,
    ) -> None:
        """A matcher charging ``fee_rate`` (a fraction, e.g. ``Decimal("0.001")``)."""
        if not fee_rate.is_finite() or fee_rate < 0:
            raise ValueError("fee_rate must be a non-negative decimal")
        listed = instruments.values() if isinstance(instruments, Mapping) else instruments
        self._fee_rate = fee_rate
        self._symbols = {instrument.symbol: _Symbol(instrument) for instrument in listed}
        self._key_of: dict[str, int] = {}  # order_id -> heap key, for cancel
        self._by_key: dict[int, _Record] = {}  # heap key -> record, for fills
        self._seq = 0
        self._stale = 0  # heap entries whose order was cancelled
        # Untriggered stop orders, per symbol: few, so each tick scans its symbol's.
        self._stops: dict[str, dict[str, VenueOrder]] = {}

    # -- arrival ---------------------------------------------------------------------------

    def on_arrival(self, order: VenueOrder, book: L2Book) -> MatchResult:
        """Match ``order`` against ``book`` now; rest a GTC LIMIT remainder.

        MARKET orders (any time in force) and IOC cancel what they could not fill at once; FOK
        fills whole or is KILLED without executions. A second arrival of an order id that is
        still resting raises ``VenueError`` (``DUPLICATE_ORDER``).
        """
        symbol = self._symbols.get(order.symbol)
        if symbol is None:
            raise UnknownInstrument(f"{order.symbol!r} is not listed on this venue")
        order_id = order.order_id
        if order_id in self._key_of:
            raise VenueError(f"order {order_id} is already resting", code="DUPLICATE_ORDER")
        quantity = order.quantity
        if not quantity > 0:
            raise VenueError(f"order {order_id} has no quantity", code="INVALID_QUANTITY")
        if order.type in STOPS:
            return self._arrive_stop(order, book)
        is_buy = order.side is _BUY
        # MARKET orders need no limit check; calling the helper only for LIMIT saves a call.
        cap = (
            order.protection_price if order.type is _MARKET else _stricter_cap(order, is_buy=is_buy)
        )
        levels = book.asks if is_buy else book.bids
        if (
            order.post_only
            and levels
            and (levels[0].price <= cap if is_buy else levels[0].price >= cap)
        ):
            return MatchResult(_NO_EXECUTIONS, quantity, Outcome.POST_ONLY_REJECTED)
        lot = symbol.lot_size
        if order.time_in_force is _FOK and not _can_fill(levels, cap, quantity, lot, is_buy=is_buy):
            return MatchResult(_NO_EXECUTIONS, quantity, Outcome.KILLED)

        executions: list[Execution] = []
        remaining = quantity
        for level in levels:
            price = level.price
            if price > cap if is_buy else price < cap:
                break
            take = level.quantity
            take -= take % lot
            take = remaining if take > remaining else take  # not min(): hot path, no call
            if take <= 0:
                continue
            remaining -= take
            executions.append(
                _new(
                    Execution,
                    (
                        f"{order_id}:{len(executions) + 1}",
                        order_id,
                        order.account_id,
                        take,
                        price,
                        (take * price * self._fee_rate).quantize(symbol.fee_quantum, ROUND_DOWN),
                    ),
                )
            )
            if not remaining:
                return _new(MatchResult, (tuple(executions), remaining, _FILLED))

        tif = order.time_in_force
        if order.type is _LIMIT and (tif is _GTC or tif is _GTD):
            self._rest(symbol, order, cap, remaining, len(executions), is_buy=is_buy)
            return _new(MatchResult, (tuple(executions), remaining, _RESTING))
        return _new(MatchResult, (tuple(executions), remaining, _CANCELLED_REMAINDER))

    def restore(self, order: VenueOrder, remaining: Decimal, executions_so_far: int) -> None:
        """Put a GTC LIMIT order back into the index without matching (after a restart).

        ``executions_so_far`` keeps its execution ids unique: the next one is ``n + 1``.
        """
        symbol = self._symbols.get(order.symbol)
        if symbol is None:
            raise UnknownInstrument(f"{order.symbol!r} is not listed on this venue")
        if order.order_id in self._key_of:
            raise VenueError(f"order {order.order_id} is already resting", code="DUPLICATE_ORDER")
        if order.type is not OrderType.LIMIT or order.time_in_force not in (_GTC, _GTD):
            raise VenueError("only GTC and GTD LIMIT orders rest", code="NOT_RESTABLE")
        if not remaining > 0 or executions_so_far < 0:
            raise VenueError("a restored order needs a positive remainder", code="INVALID_QUANTITY")
        is_buy = order.side is Side.BUY
        cap = _stricter_cap(order, is_buy=is_buy)
        self._rest(symbol, order, cap, remaining, executions_so_far, is_buy=is_buy)

    def _rest(
        self,
        symbol: _Symbol,
        order: VenueOrder,
        cap: Decimal,
        remaining: Decimal,
        fills: int,
        *,
        is_buy: bool,
    ) -> None:
        # On the tick grid, rounded the safe way: never a BUY above, never a SELL below its cap.
        ticks = cap / symbol.tick_size
        self._seq += 1
        if is_buy:
            key = (-math.floor(ticks) << _SEQ_BITS) + self._seq
            heappush(symbol.buys, key)
        else:
            key = (math.ceil(ticks) << _SEQ_BITS) + self._seq
            heappush(symbol.sells, key)
        self._key_of[order.order_id] = key
        self._by_key[key] = (order.order_id, order.account_id, remaining, fills)

    # -- ticks -----------------------------------------------------------------------------

    def on_tick(self, tick: Tick) -> list[Execution]:
        """Fill the resting orders that ``tick`` crosses (see the module's liquidity rules)."""
        executions: list[Execution] = []
        symbol = self._symbols.get(tick.symbol)
        if symbol is None:
            return executions  # nothing can rest on an unlisted symbol
        if symbol.buys and tick.asks:
            self._cross(symbol, symbol.buys, tick.asks, executions, is_buy=True)
        if symbol.sells and tick.bids:
            self._cross(symbol, symbol.sells, tick.bids, executions, is_buy=False)
        return executions

    def _cross(
        self,
        symbol: _Symbol,
        heap: list[int],
        liquidity: tuple[BookLevel, ...],
        out: list[Execution],
        *,
        is_buy: bool,
    ) -> None:
        """Serve ``heap`` from the top, taking ``liquidity`` levels in order while they cross."""
        by_key = self._by_key
        tick_size, lot = symbol.tick_size, symbol.lot_size
        n_levels = len(liquidity)
        index = 0
        available, offer_ticks = _offer(liquidity[0], tick_size, lot, is_buy=is_buy)
        while heap:
            key = heap[0]
            record = by_key.get(key)
            if record is None:  # cancelled: its entry lingered until now
                heappop(heap)
                self._stale -= 1
                continue
            ticks = -(key >> _SEQ_BITS) if is_buy else key >> _SEQ_BITS
            order_id, account_id, need, fills = record
            got = need - need  # a zero of the same exponent
            while need:
                if not available:
                    index += 1
                    if index == n_levels:
                        break
                    available, offer_ticks = _offer(liquidity[index], tick_size, lot, is_buy=is_buy)
                    continue
                if offer_ticks > ticks if is_buy else offer_ticks < ticks:
                    break  # this level and every later one are beyond this and every worse order
                take = available if available < need else need
                available -= take
                need -= take
                got += take
            if got:
                fills += 1
                price = ticks * tick_size
                out.append(
                    Execution(
                        f"{order_id}:{fills}",
                        order_id,
                        account_id,
                        got,
                        price,
                        (got * price * self._fee_rate).quantize(symbol.fee_quantum, ROUND_DOWN),
                    )
                )
            if need:
                if got:
                    by_key[key] = (order_id, account_id, need, fills)
                return  # no liquidity left at this price, so none at any worse price either
            heappop(heap)
            del by_key[key]
            del self._key_of[order_id]

    # -- cancel and queries ----------------------------------------------------------------

    def cancel(self, order_id: str) -> Decimal | None:
        """Remove a resting order; returns the quantity it still had, or ``None`` if not resting."""
        key = self._key_of.pop(order_id, None)
        if key is None:
            return self._drop_stop(order_id)
        record = self._by_key.pop(key)
        self._stale += 1
        if self._stale > _MIN_STALE_TO_COMPACT and self._stale > len(self._by_key):
            self._compact()
        return record[2]

    def amend(self, order: VenueOrder, delta: Decimal) -> Decimal | None:
        """Change a resting order to ``order``'s price by ``delta`` quantity; what it now holds.

        A smaller quantity at the same price keeps the order's place in the queue; a new price
        or a larger quantity rests it again behind every order at that price (as exchanges do).
        It does not match on the spot: the next tick that crosses its new price fills it, as it
        fills any resting order. ``None``: the order does not rest here (filled whole, or never
        rested); a result that is not positive: ``delta`` would take away more than it holds,
        and nothing changed.
        """
        order_id = order.order_id
        key = self._key_of.get(order_id)
        if key is None:
            return None
        symbol = self._symbols.get(order.symbol)
        if symbol is None:
            raise UnknownInstrument(f"{order.symbol!r} is not listed on this venue")
        _, account_id, held, fills = self._by_key[key]
        remaining = held + delta
        if not remaining > 0:
            return remaining
        is_buy = order.side is _BUY
        cap = _stricter_cap(order, is_buy=is_buy)
        ticks = cap / symbol.tick_size
        price_ticks = math.floor(ticks) if is_buy else math.ceil(ticks)
        resting_ticks = -(key >> _SEQ_BITS) if is_buy else key >> _SEQ_BITS
        if price_ticks == resting_ticks and delta <= 0:
            self._by_key[key] = (order_id, account_id, remaining, fills)
            return remaining
        self.cancel(order_id)
        self._rest(symbol, order, cap, remaining, fills, is_buy=is_buy)
        return remaining

    def _compact(self) -> None:
        """Drop every cancelled entry from every heap (amortised: runs once per many cancels)."""
        by_key = self._by_key
        for symbol in self._symbols.values():
            for heap in (symbol.buys, symbol.sells):
                heap[:] = [key for key in heap if key in by_key]
                heapify(heap)
        self._stale = 0

    def remaining(self, order_id: str) -> Decimal | None:
        """What is left of a resting order (or untriggered stop), or ``None`` if neither."""
        key = self._key_of.get(order_id)
        if key is None:
            for stops in self._stops.values():
                stop = stops.get(order_id)
                if stop is not None:
                    return stop.quantity
            return None
        return self._by_key[key][2]

    # -- stops -----------------------------------------------------------------------------

    def _hold_stop(self, order: VenueOrder) -> MatchResult:
        """Keep an arriving stop order untriggered (it answers as resting)."""
        if order.stop_price is None:
            raise VenueError(f"stop order {order.order_id} has no stop price", code="MISSING_PRICE")
        if order.symbol not in self._symbols:
            raise UnknownInstrument(f"{order.symbol!r} is not listed on this venue")
        self._stops.setdefault(order.symbol, {})[order.order_id] = order
        return MatchResult(_NO_EXECUTIONS, order.quantity, _RESTING)

    def _arrive_stop(self, order: VenueOrder, book: L2Book) -> MatchResult:
        """Hold an arriving stop, unless the last price has already passed its stop price
        (``STOP_WRONG_SIDE``: it would trigger at once, which its sender never meant)."""
        stop_price = order.stop_price
        if stop_price is not None and stop_on_wrong_side(order.side, stop_price, book.last_price):
            return MatchResult(_NO_EXECUTIONS, order.quantity, Outcome.STOP_WRONG_SIDE)
        return self._hold_stop(order)

    def restore_stop(self, order: VenueOrder) -> None:
        """Put an untriggered stop order back (after a restart)."""
        self._hold_stop(order)

    def _drop_stop(self, order_id: str) -> Decimal | None:
        for stops in self._stops.values():
            stop = stops.pop(order_id, None)
            if stop is not None:
                return stop.quantity
        return None

    def trigger(self, tick: Tick, book: L2Book) -> list[tuple[VenueOrder, MatchResult]]:
        """The stop orders ``tick``'s last price crosses (a BUY at or above its stop price, a
        SELL at or below), each taken out of the stops and arrived at once as the MARKET or
        LIMIT order it becomes: its match against ``book``, as any arrival's."""
        stops = self._stops.get(tick.symbol)
        if not stops:
            return []
        last = tick.last_price
        crossed = [
            stop
            for stop in stops.values()
            if stop.stop_price is not None
            and (last >= stop.stop_price if stop.side is _BUY else last <= stop.stop_price)
        ]
        triggered: list[tuple[VenueOrder, MatchResult]] = []
        for stop in crossed:
            del stops[stop.order_id]
            working = stop._replace(
                type=_MARKET if stop.type is OrderType.STOP_MARKET else _LIMIT, stop_price=None
            )
            triggered.append((working, self.on_arrival(working, book)))
        return triggered

    def resting_count(self) -> int:
        """How many orders rest in the index."""
        return len(self._key_of)

    def clear(self) -> None:
        """Take every resting order out (nothing is filled or reported): the replica no longer
        owns their accounts, or is about to restore the ones it owns from the store."""
        self._stops.clear()
        self._key_of.clear()
        self._by_key.clear()
        for symbol in self._symbols.values():
            symbol.buys.clear()
            symbol.sells.clear()
        self._stale = 0


def _stricter_cap(order: VenueOrder, *, is_buy: bool) -> Decimal:
    """The worst price ``order`` may fill at: its protection price, or its limit if stricter."""
    cap = order.protection_price
    if order.type is _LIMIT:
        limit = order.limit_price
        if limit is None:
            raise VenueError(f"LIMIT order {order.order_id} has no price", code="MISSING_PRICE")
        if limit < cap if is_buy else limit > cap:
            cap = limit
    return cap


def _can_fill(
    levels: tuple[BookLevel, ...], cap: Decimal, quantity: Decimal, lot: Decimal, *, is_buy: bool
) -> bool:
    """Whether the levels within ``cap`` hold at least ``quantity`` on the lot grid."""
    available = quantity - quantity
    for level in levels:
        if level.price > cap if is_buy else level.price < cap:
            return False
        available += level.quantity - level.quantity % lot
        if available >= quantity:
            return True
    return False


def _offer(
    level: BookLevel, tick_size: Decimal, lot: Decimal, *, is_buy: bool
) -> tuple[Decimal, int]:
    """A tick's level as liquidity: quantity on the lot grid, price in whole ticks.

    The price is rounded against the resting order (up for an ask, down for a bid) so an
    off-grid external level never crosses an order it does not reach.
    """
    ticks_exact = level.price / tick_size
    offer_ticks = math.ceil(ticks_exact) if is_buy else math.floor(ticks_exact)
    return level.quantity - level.quantity % lot, offer_ticks
