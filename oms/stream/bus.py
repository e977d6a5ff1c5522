"""How order entry hands a command on: to Kafka in production, straight to the engine in tests.

The REST layer answers 202 once the command is accepted for processing, so ``send`` returns
when the command is durable on its way (Kafka acknowledged it, acks=all), not when it is applied.
An account change the API made is also announced as a risk event (``RiskEventSink``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from oms.domain.commands import AmendOrder, ApplyFill, CancelAll, CancelOrder, PlaceOrder
from oms.stream.codecs import AccountCommand, RiskEvent

OrderCommand = PlaceOrder | CancelOrder | ApplyFill | AmendOrder | CancelAll


class CommandBus(ABC):
    """Sends commands to the engine that owns their account."""

    @abstractmethod
    async def send(self, commands: Sequence[OrderCommand]) -> None:
        """Hand the commands on, in order; return once they cannot be lost."""

    async def send_bounded_by_caller(self, commands: Sequence[OrderCommand]) -> None:
        """``send`` for a caller whose own timer, shorter than the bus's, bounds the wait (a
        placement's ``oms.api.outages.Waits``): a bus that times its sends skips its timer."""
        await self.send(commands)

    @abstractmethod
    async def send_account(self, command: AccountCommand) -> None:
        """Hand an account change (already recorded in the store) to the engine that owns the
        account; a global kill switch to every engine. Return once it cannot be lost."""


class RiskEventSink(ABC):
    """Where risk events are published for others (``risk-events`` on Kafka)."""

    @abstractmethod
    async def publish_risk_event(self, event: RiskEvent) -> None:
        """Publish one risk event; return once it cannot be lost (Kafka acknowledged it).

        Called only after the change it reports is durable (recorded in the store), so a
        reader never hears of a change a restart would undo.
        """
