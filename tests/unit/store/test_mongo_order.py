"""The repository's bookkeeping that needs no server: durability advances in drain order."""

from __future__ import annotations

from oms.store.mongo import MongoOrderRepository
from tests.unit.store.histories import open_history, states


def test_the_durable_mark_only_advances_over_drains_written_in_order() -> None:
    repository = MongoOrderRepository("mongodb://unused/", "unused")
    memory = repository.memory
    first_history, second_history = open_history("o-1"), open_history("o-2")
    for event, order in zip(first_history, states(first_history), strict=True):
        memory.save([order], [event])
    first = [memory.drain(), False, 1]
    for event, order in zip(second_history, states(second_history), strict=True):
        memory.save([order], [event])
    second = [memory.drain(), False, 2]
    repository._in_order.extend([first, second])

    repository._complete(second)  # the later write finished first
    assert memory.durable == 0
    repository._complete(first)
    assert memory.durable == 4
    assert not repository._in_order
    assert repository._stored_through == 2  # both writes' order documents are written
