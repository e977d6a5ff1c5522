"""The firm-wide caps in memory: one process's stand-in for ``RedisGlobalLimits`` (unit tests,
and a single replica without Redis), applying the same rule (``global_limits.breach``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from oms.domain.enums import Side
from oms.domain.global_limits import (
    GlobalLimits,
    GlobalReservation,
    Reserved,
    Usage,
    breach,
    caps_for,
)
from oms.engine.ports import GlobalLimitStore

__all__ = ["MemoryGlobalLimits"]


class MemoryGlobalLimits(GlobalLimitStore):
    """``GlobalLimitStore`` over dicts (not shared between processes)."""

    def __init__(self) -> None:
        self._limits = GlobalLimits()
        self._open: dict[int, dict[str, GlobalReservation]] = {}
        self._positions: dict[int, dict[str, int]] = {}

    async def set_limits(self, limits: GlobalLimits) -> None:
        """Replace every cap."""
        self._limits = limits

    async def limits(self) -> GlobalLimits:
        """The caps as last set."""
        return self._limits

    async def reserve(self, orders: Sequence[GlobalReservation]) -> list[Reserved]:
        """Check and reserve each order in turn."""
        answers: list[Reserved] = []
        for order in orders:
            held = self._open.setdefault(order.partition, {})
            if order.order_id in held:
                answers.append(Reserved(None, fresh=False))
                continue
            caps = caps_for(self._limits, order.symbol, order.group)
            refused = breach(caps, await self.usage(order.symbol, order.group), order)
            if refused is None:
                held[order.order_id] = order
            answers.append(Reserved(refused, fresh=refused is None))
        return answers

    async def release(
        self, partition: int, order_id: str, *, filled: int = 0, ended: bool = False
    ) -> bool:
        """A fill into the position and/or the order's end."""
        held = self._open.get(partition, {})
        order = held.get(order_id)
        if order is None:
            return False
        moved = min(filled, order.quantity)
        if moved:
            positions = self._positions.setdefault(partition, {})
            signed = moved if order.side is Side.BUY else -moved
            positions[order.symbol] = positions.get(order.symbol, 0) + signed
        if ended:
            del held[order_id]
        else:
            held[order_id] = order._replace(quantity=order.quantity - moved)
        return True

    async def rebuild(
        self,
        partition: int,
        open_orders: Sequence[GlobalReservation],
        positions: Mapping[str, int],
    ) -> None:
        """Write one partition's share again."""
        self._open[partition] = {order.order_id: order for order in open_orders}
        self._positions[partition] = dict(positions)

    async def usage(self, symbol: str, group: str = "") -> Usage:
        """What every partition holds in ``symbol`` (and ``group``)."""
        notional = buying = selling = position = grouped = 0
        for held in self._open.values():
            for order in held.values():
                if group and order.group == group:
                    grouped += order.notional
                if order.symbol != symbol:
                    continue
                notional += order.notional
                if order.side is Side.BUY:
                    buying += order.quantity
                else:
                    selling += order.quantity
        for positions in self._positions.values():
            position += positions.get(symbol, 0)
        return Usage(notional, buying, selling, position, grouped)
