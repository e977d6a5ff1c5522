"""What the risk book keeps per instrument and per accepted order, shaped for the hot path."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from oms.domain.instruments import Instrument
from oms.risk.account import AccountState, Bucket
from oms.risk.decision import Reservation, RiskDecision
from oms.risk.positions import PositionState


class Listing:
    """An instrument with the figures and the ledger buckets its fills need, found once."""

    __slots__ = (
        "base",
        "fees_quote",
        "instrument",
        "quote",
        "quote_quantum",
        "symbol",
        "tick",
        "venue_base",
        "venue_quote",
    )

    def __init__(
        self, instrument: Instrument, venue: dict[str, Bucket], fees: dict[str, Bucket]
    ) -> None:
        self.instrument = instrument
        self.symbol = instrument.symbol
        self.base = instrument.base
        self.quote = instrument.quote
        self.tick = instrument.tick_size
        # Reservations are rounded up to the precision of the price grid.
        self.quote_quantum = instrument.quote_quantum
        # The contra and fee buckets every fill of this instrument moves.
        self.venue_base = venue.setdefault(self.base, Bucket())
        self.venue_quote = venue.setdefault(self.quote, Bucket())
        self.fees_quote = fees.setdefault(self.quote, Bucket())

    def protection(self, reference: Decimal, band: Decimal, *, is_buy: bool) -> Decimal:
        """The collar edge on the tick grid, rounded towards the reference (never below a tick)."""
        tick = self.tick
        if is_buy:
            return (reference * (1 + band) / tick).to_integral_value(ROUND_FLOOR) * tick
        edge = (reference * (1 - band) / tick).to_integral_value(ROUND_CEILING) * tick
        return edge if edge > 0 else tick


class OpenOrder:
    """One accepted order: what is left unfilled and reserved, and where its fills go.

    Kept a while after release (see ``Recent``) so that a late fill still finds its account.
    """

    # The accept decision is not kept (``decision`` rebuilds it): with a million resting orders
    # the two tuples would cost about 150 MB for what only a replayed accept reads.
    __slots__ = (
        "account",
        "amount",
        "base",
        "fill_ids",
        "is_buy",
        "listing",
        "order_id",
        "position",
        "protection",
        "quote",
        "remaining",
        "reserved",
    )

    def __init__(  # noqa: PLR0917 - built once per order: the book passes it positionally
        self,
        order_id: str,
        account: AccountState,
        listing: Listing,
        position: PositionState,
        is_buy: bool,
        quantity: Decimal,
        reserved: Decimal,
        protection: Decimal,
    ) -> None:
        self.order_id = order_id
        self.account = account
        self.listing = listing
        self.position = position
        self.is_buy = is_buy
        self.amount = reserved  # what accepting reserved
        self.protection = protection
        # The account's buckets of the two assets, found once (created empty if never held).
        buckets = account.buckets
        self.base = buckets.get(listing.base) or buckets.setdefault(listing.base, Bucket())
        self.quote = buckets.get(listing.quote) or buckets.setdefault(listing.quote, Bucket())
        self.remaining = quantity  # unfilled quantity; zero once released
        self.reserved = reserved  # what is left of the reservation; zero once released
        # Execution ids already booked; most orders have one fill, so a tuple, made on the first.
        self.fill_ids: tuple[str, ...] | None = None

    @property
    def decision(self) -> RiskDecision:
        """The decision accepting this order returned (equal to it, rebuilt)."""
        reservation = Reservation(
            self.order_id, self.account.account_id, self.reserve_asset, self.amount, self.protection
        )
        return RiskDecision(True, (), reservation)

    def reservation(self) -> Reservation:
        """What remains reserved for this order."""
        return Reservation(
            self.order_id,
            self.account.account_id,
            self.reserve_asset,
            self.reserved,
            self.protection,
        )

    @property
    def reserve_bucket(self) -> Bucket:
        """The bucket the reservation is held in: quote for a BUY, base for a SELL."""
        return self.quote if self.is_buy else self.base

    @property
    def reserve_asset(self) -> str:
        """The asset the reservation is held in."""
        return self.listing.quote if self.is_buy else self.listing.base


class Recent:
    """A bounded memory of finished orders: two generations, the older dropped when the newer fills.

    Keeps between ``size`` and ``2 * size`` entries without any per-entry bookkeeping, so replays
    and late fills are recognised for a long while and memory stays flat however long the
    process runs.
    """

    __slots__ = ("_new", "_old", "_size")

    def __init__(self, size: int) -> None:
        self._size = size
        self._new: dict[str, OpenOrder | RiskDecision] = {}
        self._old: dict[str, OpenOrder | RiskDecision] = {}

    def get(self, key: str) -> OpenOrder | RiskDecision | None:
        """The remembered value, or None."""
        found = self._new.get(key)
        return self._old.get(key) if found is None else found

    def put(self, key: str, value: OpenOrder | RiskDecision) -> None:
        """Remember ``value``; may forget the oldest generation."""
        self._new[key] = value
        if len(self._new) >= self._size:
            self._old = self._new
            self._new = {}
