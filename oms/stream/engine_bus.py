"""A command bus that hands commands straight to an in-process engine, and risk events kept in
memory (tests, single process)."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

from oms.engine import Engine
from oms.stream.bus import CommandBus, OrderCommand, RiskEventSink
from oms.stream.codecs import AccountCommand, RiskEvent


class EngineCommandBus(CommandBus):
    """Routes commands to ``engine`` in one hop; nothing is durable, nothing goes through Kafka."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sent_count = 0
        self.recent: deque[OrderCommand] = deque(maxlen=10_000)  # the last ones, for tests
        self.account_changes: list[AccountCommand] = []  # every one, for tests

    async def send(self, commands: Sequence[OrderCommand]) -> None:
        """Submit the commands; the engine applies them in order on its thread."""
        self.sent_count += len(commands)
        self.recent.extend(commands)
        self.engine.submit(commands)

    async def send_account(self, command: AccountCommand) -> None:
        """Apply the change to the engine (the only one: it owns every account)."""
        self.account_changes.append(command)
        await self.engine.apply_account_change(command)


class KeptRiskEvents(RiskEventSink):
    """Keeps every risk event in ``events``, in order; nothing goes through Kafka."""

    def __init__(self) -> None:
        self.events: list[RiskEvent] = []

    async def publish_risk_event(self, event: RiskEvent) -> None:
        """Keep the event."""
        self.events.append(event)
