"""The one message style: every message an actor handles or the order process emits is a
``NamedTuple`` made ``distinct``; domain commands arrive as the records they are."""

from __future__ import annotations

import dataclasses
from typing import get_args

import pytest

from oms.actors.directory import OrderDirectory
from oms.actors.messages import QueryOrder, Resume
from oms.actors.order import OrderActor
from oms.actors.runtime import DispatchedActor
from oms.actors.supervisor import GetLimits, GetSnapshot, RiskSupervisor
from oms.actors.venue import SimulatedVenue
from oms.domain import commands
from oms.domain.messages import is_distinct
from oms.domain.order_process import REPORT_FINISHED, REPORT_IDLE, Effect

ACTORS: tuple[type[DispatchedActor], ...] = (
    OrderActor,
    OrderDirectory,
    RiskSupervisor,
    SimulatedVenue,
)


@pytest.mark.parametrize("actor", ACTORS, ids=lambda actor: actor.__name__)
def test_handlers_when_read_then_each_message_is_a_distinct_named_tuple_or_a_domain_record(
    actor: type[DispatchedActor],
) -> None:
    # Arrange / Act
    odd = [
        kind.__name__
        for kind in actor.handlers
        if not is_distinct(kind)
        and not (dataclasses.is_dataclass(kind) and kind.__module__ == commands.__name__)
    ]

    # Assert
    assert odd == [], f"{actor.__name__} handles messages of another style: {odd}"


def test_effects_when_read_then_each_is_a_distinct_named_tuple() -> None:
    odd = [kind.__name__ for kind in get_args(Effect) if not is_distinct(kind)]

    assert odd == []


def test_equality_when_two_message_types_have_equal_fields_then_they_differ() -> None:
    # Arrange: as plain tuples each pair would be equal
    pairs = [
        (Resume(), QueryOrder()),
        (REPORT_IDLE, REPORT_FINISHED),
        (GetLimits("alice"), GetSnapshot("alice")),
    ]

    # Act
    equal = [(a, b) for a, b in pairs if a == b]
    unequal = [(a, b) for a, b in pairs if a != b]

    # Assert
    assert equal == []
    assert unequal == pairs
    assert GetLimits("alice") == GetLimits("alice")
    assert hash(GetLimits("alice")) == hash(GetLimits("alice"))
    assert GetLimits("alice") != ("alice",)
