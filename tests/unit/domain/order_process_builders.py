"""Builders of an order process in each phase, and the commands that drive it: shared by the
process's unit tests, the actor's and the property machine (test modules import these, never
one another)."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from oms.domain.commands import AmendOrder, ApplyFill, CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import (
    OrderEvent,
)
from oms.domain.instruments import DEFAULT_INSTRUMENTS
from oms.domain.order_process import (
    Effect,
    OrderProcess,
    Phase,
    ProcessContext,
    Step,
)
from oms.domain.reasons import RejectReason

_P = Phase
_S = Step
QUANTITY = Decimal("1")
PRICE = Decimal("100.00")
NOW = 1000.0


# -- builders --------------------------------------------------------------------------------


def context() -> ProcessContext:
    """A context with the default instruments and an empty outbox."""
    return ProcessContext({i.symbol: i for i in DEFAULT_INSTRUMENTS})


def place_command(
    *, quantity: Decimal = QUANTITY, kind: OrderType = OrderType.LIMIT, order_id: str = "o-1"
) -> PlaceOrder:
    """A PlaceOrder for a BUY of ``quantity`` BTC-USD (LIMIT at 100.00, or MARKET)."""
    price = PRICE if kind is OrderType.LIMIT else None
    tif = TimeInForce.GTC if kind is OrderType.LIMIT else TimeInForce.IOC
    return PlaceOrder(
        f"place-{order_id}", order_id, "cl-1", "a1", "BTC-USD", Side.BUY, kind, quantity, price,
        tif, NOW,
    )  # fmt: skip


def fill(n: int, quantity: str, order_id: str = "o-1") -> ApplyFill:
    """Execution ``n`` of ``quantity`` at 100.00 (ids like the venue's: ``o-1:n``)."""
    return ApplyFill(
        f"{order_id}:{n}", order_id, "a1", Decimal(quantity), PRICE, Decimal("0.01"), NOW
    )


def cancel_command(n: int = 1, order_id: str = "o-1") -> CancelOrder:
    """A CancelOrder with its own id."""
    return CancelOrder(f"cancel-{n}", order_id, "a1", NOW)


def take(ctx: ProcessContext) -> tuple[list[OrderEvent], list[Effect]]:
    """What the last messages decided (the shell's job: empty the outbox)."""
    events, effects = list(ctx.events), list(ctx.effects)
    ctx.events.clear()
    ctx.effects.clear()
    return events, effects


def snapshot(process: OrderProcess) -> tuple[object, ...]:
    """Every slot of the process (its whole state), and the outbox."""
    ctx = process.context
    state = tuple(
        set(process.applied) if name == "applied" else getattr(process, name)
        for name in OrderProcess.__slots__
    )
    return (*state, list(ctx.events), list(ctx.effects))


# -- a process in each phase, driven there by messages only ----------------------------------


def placed_process(ctx: ProcessContext, **kwargs: object) -> OrderProcess:
    """AWAITING_RISK: placed and risk asked."""
    process = OrderProcess(ctx)
    process.place(place_command(**kwargs), NOW)  # type: ignore[arg-type]
    return process


def restored_new(ctx: ProcessContext) -> OrderProcess:
    """PLACED: a NEW order rehydrated from the store (risk not asked again yet)."""
    source = placed_process(context())
    assert source.order is not None
    return OrderProcess.restored(ctx, source.order, set(source.applied))


def arriving(ctx: ProcessContext) -> OrderProcess:
    """ARRIVING: accepted, submitted to the venue."""
    process = placed_process(ctx)
    process.risk_accepted(PRICE, NOW, to_venue=True)
    return process


def resting(ctx: ProcessContext) -> OrderProcess:
    """RESTING: the venue rests all of it; nothing in flight."""
    process = arriving(ctx)
    process.arrived((), None, NOW, resting=True)
    return process


def cancelling(ctx: ProcessContext) -> OrderProcess:
    """CANCELLING: resting, and the venue was asked to take it out."""
    process = resting(ctx)
    process.cancel(cancel_command(), NOW)
    return process


def working(ctx: ProcessContext) -> OrderProcess:
    """WORKING: accepted with no simulated venue (fills come from outside)."""
    process = placed_process(ctx)
    process.risk_accepted(PRICE, NOW, to_venue=False)
    return process


def closing(ctx: ProcessContext) -> OrderProcess:
    """CLOSING: the venue removed 0.6 of 1, so 0.4 it filled before the cancel is still due."""
    process = cancelling(ctx)
    process.venue_cancelled(Decimal("0.6"), NOW)
    return process


def settling(ctx: ProcessContext) -> OrderProcess:
    """SETTLING: cancelled with nothing filled (no venue): the release is asked."""
    process = working(ctx)
    process.cancel(cancel_command(), NOW)
    return process


def ending(ctx: ProcessContext) -> OrderProcess:
    """ENDING: filled whole from outside while its cancel was at the venue; risk released, the
    venue's answer to the cancel is still due."""
    process = cancelling(ctx)
    process.fill(fill(1, "1"))
    process.settled(NOW, released=True)
    return process


def withdrawn(ctx: ProcessContext) -> OrderProcess:
    """WITHDRAWN: cancelled while risk was deciding."""
    process = placed_process(ctx)
    process.cancel(cancel_command(), NOW)
    return process


def done(ctx: ProcessContext) -> OrderProcess:
    """DONE: rejected by risk."""
    process = placed_process(ctx)
    process.risk_rejected(RejectReason.KILL_SWITCH_GLOBAL, "", NOW)
    return process


REACH: dict[Phase, Callable[[ProcessContext], OrderProcess]] = {
    _P.UNPLACED: OrderProcess,
    _P.PLACED: restored_new,
    _P.AWAITING_RISK: placed_process,
    _P.WITHDRAWN: withdrawn,
    _P.ARRIVING: arriving,
    _P.CANCEL_HELD: lambda ctx: then(arriving(ctx), lambda p: p.cancel(cancel_command(), NOW)),
    _P.RESTING: resting,
    _P.CANCELLING: cancelling,
    _P.WORKING: working,
    _P.CLOSING: closing,
    _P.SETTLING: settling,
    _P.ENDING: ending,
    _P.DONE: done,
}


def then(process: OrderProcess, act: Callable[[OrderProcess], object]) -> OrderProcess:
    act(process)
    return process


def amend_command(
    n: int = 1, *, quantity: str | None = "2", price: str | None = None, order_id: str = "o-1"
) -> AmendOrder:
    """An AmendOrder with its own id (by default: to a quantity of 2 at the same price)."""
    return AmendOrder(
        f"amend-{n}",
        order_id,
        "a1",
        NOW,
        None if quantity is None else Decimal(quantity),
        None if price is None else Decimal(price),
    )


def amend_risk(ctx: ProcessContext) -> OrderProcess:
    """AMEND_RISK: resting, an amend asked risk."""
    return then(resting(ctx), lambda p: p.amend(amend_command(), NOW))


def amend_venue(ctx: ProcessContext) -> OrderProcess:
    """AMEND_VENUE: risk reserved for the amend, the venue was asked."""
    return then(amend_risk(ctx), lambda p: p.amend_reserved(PRICE, NOW))


REACH[_P.AMEND_RISK] = amend_risk
REACH[_P.AMEND_VENUE] = amend_venue
