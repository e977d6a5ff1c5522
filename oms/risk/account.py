"""The mutable state the risk book keeps per account; read by the checks, changed only by the book."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from oms.domain.limits import RiskLimits, TradingState
from oms.risk.positions import Position, PositionState

if TYPE_CHECKING:
    from oms.risk.checks import Check

_ZERO = Decimal(0)
SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Balance:
    """A snapshot of one asset of one account: free to use, and held for open orders."""

    available: Decimal
    reserved: Decimal

    @property
    def total(self) -> Decimal:
        """Available plus reserved."""
        return self.available + self.reserved


class Bucket:
    """The live balance of one asset of one account (mutable, owned by the book)."""

    __slots__ = ("available", "reserved")

    def __init__(self, available: Decimal = _ZERO, reserved: Decimal = _ZERO) -> None:
        self.available = available
        self.reserved = reserved

    def snapshot(self) -> Balance:
        """An immutable copy."""
        return Balance(self.available, self.reserved)


def day_index(now: float) -> int:
    """The UTC day ``now`` falls in: the daily loss limit counts from the start of it."""
    return int(now // SECONDS_PER_DAY)


class AccountState:
    """Balances, positions, limits, kill switch, open orders, velocity window and day start."""

    __slots__ = (
        "account_id",
        "buckets",
        "checks",
        "counts_velocity",
        "day",
        "day_start_pnl",
        "limits",
        "open_orders",
        "positions",
        "realized_pnl",
        "trading_state",
        "velocity",
        "velocity_notional",
    )

    def __init__(
        self,
        account_id: str,
        buckets: dict[str, Bucket],
        limits: RiskLimits,
        checks: tuple[Check, ...],
    ) -> None:
        self.account_id = account_id
        self.buckets = buckets
        self.limits = limits
        # The checks that can deny under ``limits`` (see ``checks_for``), and whether accepted
        # orders must be counted for velocity; both follow the limits (``use_limits``).
        self.checks = checks
        self.counts_velocity = limits.tracks_velocity
        self.positions: dict[str, PositionState] = {}
        self.trading_state = TradingState.ACTIVE
        self.open_orders = 0
        # Sum of the positions' realized PnL, kept here so the daily-loss check needs no loop.
        self.realized_pnl = _ZERO
        # Accepted orders inside the velocity window, oldest first: (accepted at, notional).
        self.velocity: deque[tuple[float, Decimal]] = deque()
        self.velocity_notional = _ZERO
        # The UTC day the loss limit currently counts in (None until the first order) and the
        # account's total PnL when that day started.
        self.day: int | None = None
        self.day_start_pnl = _ZERO

    def use_limits(self, limits: RiskLimits, checks: tuple[Check, ...]) -> None:
        """Switch to new limits and the checks they need."""
        self.limits = limits
        self.checks = checks
        self.counts_velocity = limits.tracks_velocity

    def available(self, asset: str) -> Decimal:
        """Available balance of ``asset`` (zero when the account never held it)."""
        bucket = self.buckets.get(asset)
        return _ZERO if bucket is None else bucket.available

    def unrealized_pnl(self, marks: dict[str, Decimal]) -> Decimal:
        """Unrealized PnL over every position at the current marks."""
        # Inlined ``PositionState.unrealized_pnl``: the daily-loss check runs this on every order.
        total = _ZERO
        for symbol, position in self.positions.items():
            quantity = position.quantity
            if quantity:
                mark = marks.get(symbol)
                if mark is not None:
                    total += quantity * (mark - position.average_price)
        return total

    def pnl_today(self, marks: dict[str, Decimal], now: float) -> Decimal:
        """Realized plus unrealized PnL since the start of the day ``now`` falls in."""
        total = self.realized_pnl + self.unrealized_pnl(marks)
        if self.day is None:
            return total  # the first day started when the account opened, with zero PnL
        if self.day != day_index(now):
            return _ZERO  # a new day: it starts now (the book rolls it on the next accept)
        return total - self.day_start_pnl

    def roll_day(self, marks: dict[str, Decimal], now: float) -> None:
        """Start counting the daily loss from ``now``'s day if it is not the current one."""
        today = day_index(now)
        if self.day == today:
            return
        if self.day is not None:
            self.day_start_pnl = self.realized_pnl + self.unrealized_pnl(marks)
        self.day = today

    def velocity_in_window(self, now: float) -> tuple[int, Decimal]:
        """How many orders, and how much notional, were accepted in the window ending at ``now``.

        Read-only: entries that have left the window are skipped here and dropped by ``prune``.
        """
        window = self.limits.velocity_window_s
        if window is None:
            return 0, _ZERO
        cutoff = now - window
        count = len(self.velocity)
        notional = self.velocity_notional
        for accepted_at, amount in self.velocity:
            if accepted_at > cutoff:
                break
            count -= 1
            notional -= amount
        return count, notional

    def count_velocity(self, now: float, notional: Decimal) -> None:
        """Record one accepted order and drop the entries that left the window."""
        window = self.limits.velocity_window_s
        if window is None:
            return
        entries = self.velocity
        cutoff = now - window
        while entries and entries[0][0] <= cutoff:
            self.velocity_notional -= entries.popleft()[1]
        entries.append((now, notional))
        self.velocity_notional += notional


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    """An immutable view of one account: balances by asset, positions by symbol, state and PnL."""

    account_id: str
    balances: dict[str, Balance]
    positions: dict[str, Position]
    trading_state: TradingState
    limits: RiskLimits
    realized_pnl: Decimal
    unrealized_pnl: Decimal
