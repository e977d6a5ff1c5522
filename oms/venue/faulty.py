"""A fault-injecting venue for tests: a small in-memory exchange behind the ``VenuePort`` that
loses and garbles its answers.

It keeps the venue's own view (orders by the client order id we gave them, with order ids of
its own, and trades with ids of its own) and answers every call of the port. Each call takes
the next fault of a script (a list a test or hypothesis writes; empty: no fault), so a run is
exactly repeatable:

- ``DROP_ACK``: the request is carried out, then the answer is lost (``VenueOutcomeUnknown``,
  TIMEOUT): the order is placed (or cancelled) and we do not know it.
- ``TIMEOUT``: no answer and nothing done: from outside the same as ``DROP_ACK``, which is the
  point: only asking the venue tells them apart.
- ``SERVER_ERROR``: a 503 (``VenueOutcomeUnknown``, UNAVAILABLE), nothing done.
- ``DISCONNECT``: the connection drops (``VenueOutcomeUnknown``, DISCONNECTED), nothing done.
- ``DELAY``: no answer in time (TIMEOUT), and the request is carried out ``delay_s`` later (by
  ``clock``): a place that lands after we gave up waiting, which only the submit window keeps
  from being taken for a refusal.

Execution reports (what a venue pushes as it trades our orders) come out of ``reports``, which
its own script garbles: ``DUPLICATE`` sends one twice, ``REORDER`` swaps it with the next,
``DELAY`` holds it back to the next call, ``DROP`` loses it. The venue's record stays whole
(``my_trades`` has every trade): only its messages are unreliable, as on a real exchange.

The trades themselves come from the test (``trade``): the exchange matching someone else's
order against ours, at our limit price.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from oms.venue.port import (
    AmendRequest,
    AmendSupport,
    InstrumentRules,
    PlaceRequest,
    RefusalReason,
    UnknownReason,
    VenueOrderState,
    VenueOrderStatus,
    VenueOutcomeUnknown,
    VenuePort,
    VenueRefused,
    VenueTrade,
)


class Fault(StrEnum):
    """What goes wrong with one call, or with one execution report."""

    NONE = "NONE"
    DROP_ACK = "DROP_ACK"
    TIMEOUT = "TIMEOUT"
    SERVER_ERROR = "SERVER_ERROR"
    DISCONNECT = "DISCONNECT"
    DUPLICATE = "DUPLICATE"
    REORDER = "REORDER"
    DELAY = "DELAY"
    DROP = "DROP"


CALL_FAULTS = (
    Fault.NONE,
    Fault.DROP_ACK,
    Fault.TIMEOUT,
    Fault.SERVER_ERROR,
    Fault.DISCONNECT,
    Fault.DELAY,
)
REPORT_FAULTS = (Fault.NONE, Fault.DUPLICATE, Fault.REORDER, Fault.DELAY, Fault.DROP)
_FEE_QUANTUM = Decimal("0.00000001")


@dataclass
class _Order:
    """One order as the venue holds it."""

    request: PlaceRequest
    venue_order_id: str
    filled: Decimal = Decimal(0)
    notional: Decimal = Decimal(0)
    status: VenueOrderStatus = VenueOrderStatus.OPEN

    def state(self) -> VenueOrderState:
        """The venue's word on it."""
        request = self.request
        average = self.notional / self.filled if self.filled else None
        return VenueOrderState(
            client_order_id=request.client_order_id,
            venue_order_id=self.venue_order_id,
            symbol=request.symbol,
            status=self.status,
            quantity=request.quantity,
            filled=self.filled,
            price=request.price,
            average_price=average,
            updated_at=None,
        )


@dataclass
class FaultyVenue(VenuePort):
    """The exchange's view of our orders and trades, answering through a script of faults."""

    calls: list[Fault] = field(default_factory=list)  # consumed front first, one per call
    report_faults: list[Fault] = field(default_factory=list)  # one per execution report
    fee_rate: Decimal = Decimal("0.001")
    clock: Callable[[], float] = time.time
    delay_s: float = 5.0  # how late a DELAYed request lands
    rules: Mapping[str, InstrumentRules] = field(default_factory=dict)
    orders: dict[str, _Order] = field(default_factory=dict)  # by our client order id
    trades: list[VenueTrade] = field(default_factory=list)  # every trade, in time order
    _outbox: list[VenueTrade] = field(default_factory=list)  # reports not yet handed out
    _held: list[VenueTrade] = field(default_factory=list)  # delayed to the next ``reports``
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _late: list[tuple[float, PlaceRequest]] = field(default_factory=list)  # DELAYed places

    # -- the port --------------------------------------------------------------------------

    @property
    def amend_support(self) -> AmendSupport:
        """No amend here: the engine's venue side must cope with venues without one."""
        return AmendSupport.UNSUPPORTED

    async def open(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release."""

    async def instrument_rules(self) -> Mapping[str, InstrumentRules]:
        """The rules it was given."""
        fault = self._before()
        self._after(fault)
        return self.rules

    async def place(self, request: PlaceRequest) -> VenueOrderState:
        """Take a LIMIT order under our client order id; a client order id in use is refused."""
        fault = self._before(may_delay=True)
        if fault is Fault.DELAY:
            self._late.append((self.clock() + self.delay_s, request))
            raise VenueOutcomeUnknown(UnknownReason.TIMEOUT, "no answer in time (on its way)")
        order = self._take(request)
        self._after(fault)
        return order.state()

    def _take(self, request: PlaceRequest) -> _Order:
        if request.client_order_id in self.orders:
            raise VenueRefused(RefusalReason.DUPLICATE_ORDER, request.client_order_id)
        if request.price is None:
            raise VenueRefused(RefusalReason.INVALID_ORDER, "this venue takes LIMIT orders only")
        order = _Order(request, f"V{next(self._ids)}")
        self.orders[request.client_order_id] = order
        return order

    def land(self) -> None:
        """The DELAYed places whose time has come reach the venue (every call does this first)."""
        now = self.clock()
        due = [request for at, request in self._late if at <= now]
        self._late = [(at, request) for at, request in self._late if at > now]
        for request in due:
            with contextlib.suppress(VenueRefused):  # refused on arrival: nothing happens
                self._take(request)

    async def amend(self, request: AmendRequest) -> VenueOrderState:
        """Refused: ``amend_support`` says so."""
        fault = self._before()
        self._after(fault)
        raise VenueRefused(RefusalReason.AMEND_UNSUPPORTED, request.client_order_id)

    async def cancel(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """Cancel what is left; the order as it ends, with what had filled."""
        fault = self._before()
        order = self._order(client_order_id)
        if order.status is not VenueOrderStatus.OPEN:
            raise VenueRefused(RefusalReason.NOT_CANCELLABLE, f"{client_order_id} {order.status}")
        order.status = VenueOrderStatus.CANCELLED
        self._after(fault)
        return order.state()

    async def fetch_order(self, client_order_id: str, symbol: str) -> VenueOrderState:
        """The order by our client order id (``VenueRefused`` ORDER_NOT_FOUND if none)."""
        fault = self._before()
        order = self._order(client_order_id)
        self._after(fault)
        return order.state()

    async def open_orders(self, symbol: str | None = None) -> Sequence[VenueOrderState]:
        """Every open order of ours (of one symbol)."""
        fault = self._before()
        found = [
            o.state()
            for o in self.orders.values()
            if o.status is VenueOrderStatus.OPEN and symbol in (None, o.request.symbol)
        ]
        self._after(fault)
        return found

    async def my_trades(self, symbol: str, since: float | None = None) -> Sequence[VenueTrade]:
        """Our trades on ``symbol`` from ``since`` on, oldest first."""
        fault = self._before()
        found = [
            t
            for t in self.trades
            if t.symbol == symbol and (since is None or t.executed_at >= since)
        ]
        self._after(fault)
        return found

    # -- the exchange's side ---------------------------------------------------------------

    def trade(self, client_order_id: str, quantity: Decimal, at: float) -> VenueTrade | None:
        """Trade up to ``quantity`` of an open order at its price; None if nothing is open."""
        self.land()
        order = self.orders.get(client_order_id)
        if order is None or order.status is not VenueOrderStatus.OPEN:
            return None
        request = order.request
        take = min(quantity, request.quantity - order.filled)
        if take <= 0:
            return None
        assert request.price is not None, "only LIMIT orders rest here"
        price = request.price
        order.filled += take
        order.notional += take * price
        if order.filled == request.quantity:
            order.status = VenueOrderStatus.FILLED
        fee = (take * price * self.fee_rate).quantize(_FEE_QUANTUM)
        done = VenueTrade(
            trade_id=f"T{next(self._ids)}",
            venue_order_id=order.venue_order_id,
            client_order_id=None,  # as Binance's myTrades: only the venue's order id
            symbol=request.symbol,
            side=request.side,
            quantity=take,
            price=price,
            fee=fee,
            fee_asset=None,
            executed_at=at,
        )
        self.trades.append(done)
        self._outbox.append(done)
        return done

    def reports(self) -> list[VenueTrade]:
        """The execution reports that arrive now, garbled by the report script."""
        pending = self._held + self._outbox
        self._held, self._outbox = [], []
        out: list[VenueTrade] = []
        i = 0
        while i < len(pending):
            report = pending[i]
            fault = self.report_faults.pop(0) if self.report_faults else Fault.NONE
            if fault is Fault.DUPLICATE:
                out.extend((report, report))
            elif fault is Fault.REORDER and i + 1 < len(pending):
                out.extend((pending[i + 1], report))
                i += 1
            elif fault is Fault.DELAY:
                self._held.append(report)
            elif fault is not Fault.DROP:
                out.append(report)
            i += 1
        return out

    def client_order_id_of(self, venue_order_id: str) -> str | None:
        """Our client order id for the venue's order id (what a report's reader looks up)."""
        for client_order_id, order in self.orders.items():
            if order.venue_order_id == venue_order_id:
                return client_order_id
        return None

    # -- faults ----------------------------------------------------------------------------

    def _order(self, client_order_id: str) -> _Order:
        order = self.orders.get(client_order_id)
        if order is None:
            raise VenueRefused(RefusalReason.ORDER_NOT_FOUND, f"unknown order {client_order_id}")
        return order

    def _before(self, *, may_delay: bool = False) -> Fault:
        """The call's fault; those that stop the request before it is carried out raise now
        (a DELAY where a request cannot land later is a plain TIMEOUT)."""
        self.land()
        fault = self.calls.pop(0) if self.calls else Fault.NONE
        if fault is Fault.TIMEOUT or (fault is Fault.DELAY and not may_delay):
            raise VenueOutcomeUnknown(UnknownReason.TIMEOUT, "no answer in time")
        if fault is Fault.SERVER_ERROR:
            raise VenueOutcomeUnknown(UnknownReason.UNAVAILABLE, "503 Service Unavailable")
        if fault is Fault.DISCONNECT:
            raise VenueOutcomeUnknown(UnknownReason.DISCONNECTED, "connection reset by peer")
        return fault

    @staticmethod
    def _after(fault: Fault) -> None:
        """The answer of a request carried out is lost on ``DROP_ACK``."""
        if fault is Fault.DROP_ACK:
            raise VenueOutcomeUnknown(UnknownReason.TIMEOUT, "no answer in time (carried out)")
