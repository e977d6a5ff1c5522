"""Small actors for the dispatched runtime's tests (test modules import these, never one
another)."""

from __future__ import annotations

import threading
from typing import Any

import pykka

from oms.actors.runtime import (
    DispatchedActor,
    Dispatcher,
)


class Add:
    """Add ``amount`` to the counter."""

    __slots__ = ("amount",)

    def __init__(self, amount: int) -> None:
        self.amount = amount


class Boom:
    """Raise inside the handler."""


class Counter(DispatchedActor):
    """A tiny actor with an explicit protocol and one proxy-callable method."""

    registered = False
    handlers = {Add: "on_add", Boom: "on_boom"}

    def __init__(self, dispatcher: Dispatcher, log: list[str] | None = None) -> None:
        super().__init__(dispatcher)
        self.total = 0
        self.log = log if log is not None else []
        self.started_on: str | None = None

    def on_start(self) -> None:
        self.started_on = threading.current_thread().name
        self.log.append("start")

    def on_stop(self) -> None:
        self.log.append("stop")

    def on_add(self, message: Add) -> int:
        self.log.append(f"add {message.amount}")
        self.total += message.amount
        return self.total

    def on_boom(self, _message: Boom) -> None:
        raise ValueError("boom")

    def read_total(self) -> int:
        return self.total

    def block_on(self, future: pykka.Future[Any]) -> Any:
        return future.get(timeout=1)
