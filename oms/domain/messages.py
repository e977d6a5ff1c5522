"""How oms writes a message: a ``NamedTuple``, made ``distinct`` (the rule is stated in full in
``oms.actors.messages``).

A ``NamedTuple`` is immutable (pykka hands the same object across threads without copying it)
and cheap to build: one allocation, where a frozen dataclass pays a Python-level ``__init__`` and
an ``object.__setattr__`` per field. Its one trap is that it compares as a plain tuple: two
messages of different types with equal fields are equal (``ReportIdle() == ReportFinished()``,
both ``()``), so a test asserting ``effects == [REPORT_IDLE]`` would pass on the wrong message.
``distinct`` closes it: equal only to the same type with equal fields. Nothing on the hot path
compares messages (actors dispatch on ``type(message)`` and test singletons by identity), so the
Python-level ``__eq__`` costs nothing there.
"""

from __future__ import annotations

from typing import TypeVar

__all__ = ["distinct", "is_distinct"]

T = TypeVar("T", bound=tuple[object, ...])


def _eq(self: tuple[object, ...], other: object) -> bool:
    return type(other) is type(self) and tuple.__eq__(self, other)


def _ne(self: tuple[object, ...], other: object) -> bool:
    return not _eq(self, other)


def distinct(cls: type[T]) -> type[T]:
    """Make a ``NamedTuple`` message equal only to a message of its own type with equal fields
    (its hash stays the tuple's: equal messages still hash alike)."""
    cls.__eq__ = _eq  # type: ignore[method-assign]
    cls.__ne__ = _ne  # type: ignore[assignment, method-assign]
    cls.__hash__ = tuple.__hash__  # type: ignore[method-assign]
    return cls


def is_distinct(kind: type) -> bool:
    """True for a ``NamedTuple`` made ``distinct`` (the one message style)."""
    return issubclass(kind, tuple) and hasattr(kind, "_fields") and kind.__eq__ is _eq
