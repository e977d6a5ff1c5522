"""A seeded simulated market: a random walk per symbol with a spread and several depth levels.

Prices live as whole numbers of ticks and quantities as whole numbers of lots while the walk
runs, and become ``Decimal`` only on the way out, so every price is on the tick grid and every
quantity on the lot grid by construction. Floats appear only as the walk's step sizes (the
shape of the randomness, never an amount).
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from decimal import ROUND_HALF_EVEN, Decimal

from oms.domain.errors import UnknownInstrument
from oms.domain.instruments import Instrument
from oms.marketdata.tick import BookLevel, Tick

DEFAULT_START_PRICES: Mapping[str, Decimal] = {
    "BTC-USD": Decimal("60000"),
    "ETH-USD": Decimal("3000"),
    "SOL-USD": Decimal("150"),
}
"""Where each default instrument's walk starts; other symbols start at ``FALLBACK_START_PRICE``."""

FALLBACK_START_PRICE = Decimal("100")


class _Walk:
    """The state of one symbol's walk: its own random stream and mid price in ticks."""

    __slots__ = ("floor", "instrument", "mid", "rng")

    def __init__(self, instrument: Instrument, rng: random.Random, mid: int, floor: int) -> None:
        self.instrument = instrument
        self.rng = rng
        self.mid = mid
        self.floor = floor


class SimulatedFeed:
    """Deterministic market data for the demo and tests: the same seed gives the same ticks.

    Each symbol has its own random stream (seeded from ``seed`` and the symbol), so one symbol's
    ticks do not depend on how often the others were asked for. Per step the mid price moves by
    a normal step of ``volatility`` (a fraction of the price), the spread is ``spread_bps`` basis
    points (at least one tick), levels are ``level_gap_bps`` apart and each shows roughly
    ``level_notional`` of quote asset, so typical demo orders fill in the first level or two.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument] | Mapping[str, Instrument],
        seed: int,
        start_prices: Mapping[str, Decimal] | None = None,
        *,
        depth: int = 5,
        volatility: float = 0.0002,
        spread_bps: float = 1.0,
        level_gap_bps: float = 1.0,
        level_notional: Decimal = Decimal("250000"),
    ) -> None:
        """A feed over ``instruments`` starting at ``start_prices`` (defaults: BTC 60000, ...)."""
        if depth < 1:
            raise ValueError("depth must be at least 1")
        if volatility < 0 or spread_bps < 0 or level_gap_bps < 0 or level_notional <= 0:
            raise ValueError("volatility, spreads and level notional must not be negative")
        listed = instruments.values() if isinstance(instruments, Mapping) else instruments
        prices = {**DEFAULT_START_PRICES, **(start_prices or {})}
        self._depth = depth
        self._volatility = volatility
        self._spread = spread_bps / 10_000
        self._gap = level_gap_bps / 10_000
        # Sizing the levels is the shape of the simulation, not money: a float is fine here.
        self._level_notional = float(level_notional)
        self._walks: dict[str, _Walk] = {}
        for instrument in listed:
            start = prices.get(instrument.symbol, FALLBACK_START_PRICE)
            mid = int((start / instrument.tick_size).to_integral_value(ROUND_HALF_EVEN))
            if mid < 1:
                raise ValueError(f"start price of {instrument.symbol} is below one tick")
            # The walk never goes below a tenth of its start, nor so low that the levels
            # would run out of positive prices.
            floor = max(mid // 10, 4 * depth + 4)
            rng = random.Random(f"{seed}:{instrument.symbol}")
            self._walks[instrument.symbol] = _Walk(instrument, rng, max(mid, floor), floor)

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols this feed quotes, in listing order."""
        return tuple(self._walks)

    def resume(self, symbol: str, price: Decimal) -> None:
        """Continue ``symbol``'s walk from ``price``: the market as the replica that published
        it before this one left it (its lease moved here), not this walk's own start."""
        walk = self._walks.get(symbol)
        if walk is None:
            raise UnknownInstrument(f"{symbol!r} is not quoted by this feed")
        ticks = int((price / walk.instrument.tick_size).to_integral_value(ROUND_HALF_EVEN))
        walk.mid = max(walk.floor, ticks)

    def next_tick(self, symbol: str, now: float) -> Tick:
        """Advance ``symbol``'s walk one step and return its new snapshot stamped ``now``."""
        walk = self._walks.get(symbol)
        if walk is None:
            raise UnknownInstrument(f"{symbol!r} is not quoted by this feed")
        rng = walk.rng
        mid = max(walk.floor, walk.mid + round(rng.gauss(0.0, walk.mid * self._volatility)))
        walk.mid = mid
        spread = max(1, round(mid * self._spread))
        gap = max(1, round(mid * self._gap))
        bid = mid - spread // 2
        ask = bid + spread
        instrument = walk.instrument
        tick_size, lot_size = instrument.tick_size, instrument.lot_size
        mean_lots = self._level_notional / (mid * float(tick_size)) / float(lot_size)
        low, high = max(1, int(mean_lots * 0.5)), max(1, int(mean_lots * 1.5))
        bids = tuple(
            BookLevel(Decimal(price) * tick_size, Decimal(rng.randint(low, high)) * lot_size)
            for price in range(bid, bid - self._depth * gap, -gap)
            if price >= 1
        )
        asks = tuple(
            BookLevel(Decimal(price) * tick_size, Decimal(rng.randint(low, high)) * lot_size)
            for price in range(ask, ask + self._depth * gap, gap)
        )
        last = bids[0].price if rng.random() < 0.5 else asks[0].price
        return Tick(symbol, last, bids[0].price, asks[0].price, bids, asks, now)

    def step(self, now: float) -> list[Tick]:
        """One tick for every symbol, in listing order."""
        return [self.next_tick(symbol, now) for symbol in self._walks]
