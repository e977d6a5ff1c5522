"""Supervision's raw material: an exception that escaped an actor is an ``ActorFailure``, kept
(the first one) and told to whoever owns the dispatcher (``Failures``, one per dispatcher)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["ActorFailure", "Failures"]

logger = logging.getLogger("oms.actors.runtime")  # the runtime's one logger


@dataclass(frozen=True, slots=True)
class ActorFailure:
    """An exception that escaped an actor's turn, a drain hook or a queued call: a bug.

    After one, the actors' memory can no longer be trusted (a turn may have told others half of
    what it meant to), so whoever owns the dispatcher must stop trusting it: see
    ``Dispatcher.on_failure``.
    """

    where: str  # the actor, hook or call that raised
    error: BaseException


class Failures:
    """The failures of one dispatcher: the first one kept, every one logged and told to the
    hooks on the failing thread."""

    def __init__(self) -> None:
        self.first: ActorFailure | None = None  # the first one; the dispatcher runs on
        self._hooks: list[Callable[[ActorFailure], None]] = []

    def on_failure(self, hook: Callable[[ActorFailure], None]) -> None:
        """Call ``hook(failure)`` on the failing thread for every ``ActorFailure``."""
        self._hooks.append(hook)

    def report(self, where: str, error: BaseException) -> None:
        """Record ``error`` as an ``ActorFailure`` and tell the hooks."""
        failure = ActorFailure(where, error)
        if self.first is None:
            self.first = failure
        logger.error("actor failure in %s: %r", where, error, exc_info=error)
        for hook in tuple(self._hooks):
            try:
                hook(failure)
            except Exception:
                logger.exception("failure hook %r failed", hook)
