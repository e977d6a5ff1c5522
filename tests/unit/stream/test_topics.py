"""Every topic of the design exists once, with its partition count from the settings."""

from __future__ import annotations

from oms.config import Settings
from oms.stream.topics import dead_letter, topic_specs


def test_topic_specs_when_built_then_cover_the_design_and_a_dead_letter_topic_per_source() -> None:
    names = [spec.name for spec in topic_specs(Settings())]

    assert names == [
        "orders", "executions", "prices", "order-events", "risk-events",
        "orders.dlq", "executions.dlq", "prices.dlq",
    ]  # fmt: skip


def test_topic_specs_when_settings_set_partitions_then_use_them() -> None:
    settings = Settings(orders_partitions=24)

    by_name = {spec.name: spec for spec in topic_specs(settings)}

    assert by_name["orders"].partitions == 24
    assert by_name[dead_letter("orders")].partitions == 24
