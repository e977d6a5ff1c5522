"""Which topic names one running system uses: the design's, or unique ones for a test."""

from __future__ import annotations

from dataclasses import dataclass

from oms.config import Settings
from oms.stream.topics import (
    EXECUTIONS,
    ORDER_EVENTS,
    ORDERS,
    PRICES,
    RISK_EVENTS,
    TopicSpec,
    dead_letter,
)


@dataclass(frozen=True, slots=True)
class TopicNames:
    """The names of every topic the stream layer reads or writes."""

    orders: str = ORDERS
    executions: str = EXECUTIONS
    prices: str = PRICES
    order_events: str = ORDER_EVENTS
    risk_events: str = RISK_EVENTS

    @classmethod
    def suffixed(cls, suffix: str) -> TopicNames:
        """Every name with ``-<suffix>`` appended (tests: topics nobody else uses)."""
        base = cls()
        return cls(
            orders=f"{base.orders}-{suffix}",
            executions=f"{base.executions}-{suffix}",
            prices=f"{base.prices}-{suffix}",
            order_events=f"{base.order_events}-{suffix}",
            risk_events=f"{base.risk_events}-{suffix}",
        )

    def specs(self, settings: Settings) -> tuple[TopicSpec, ...]:
        """These topics (and a dead-letter topic per source) sized as ``topic_specs`` sizes them."""
        sources = (
            TopicSpec(self.orders, settings.orders_partitions, "account_id"),
            TopicSpec(self.executions, settings.executions_partitions, "account_id"),
            TopicSpec(self.prices, settings.prices_partitions, "symbol"),
        )
        outputs = (
            TopicSpec(self.order_events, settings.events_partitions, "account_id"),
            TopicSpec(self.risk_events, settings.events_partitions, "account_id"),
        )
        dead_letters = tuple(TopicSpec(dead_letter(t.name), t.partitions, t.key) for t in sources)
        return sources + outputs + dead_letters


def topic_names(settings: Settings) -> TopicNames:
    """The topic names this deployment uses: the design's, suffixed when the settings say so."""
    return TopicNames.suffixed(settings.topic_suffix) if settings.topic_suffix else TopicNames()
