"""Correlation ids: which request a command, an event and a log line belong to.

A request id is taken from the caller (``X-Request-ID`` over HTTP, the ``request_id`` header of
a record on ``orders``) when it is a sane one, else made here. It rides on the command (its
``request_id`` field), on the Kafka record of the command (a header, so the record's JSON schema
does not change), on the order event the command causes, and on every log line written while
the request or the record is handled: those read the context variables below, which the API's
middleware and the ingestion set (``oms.logs`` puts them on each record).

Pure: no I/O, nothing of the project imported, so every layer may use it.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token

HTTP_HEADER = "X-Request-ID"
KAFKA_HEADER = "request_id"

# What a caller may send as its id: printable ASCII without spaces (so a log line cannot be
# split or forged with it), short enough to log on every line.
_SANE = re.compile(r"[\x21-\x7e]{1,128}")

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
order_id: ContextVar[str | None] = ContextVar("order_id", default=None)
account_id: ContextVar[str | None] = ContextVar("account_id", default=None)
command_id: ContextVar[str | None] = ContextVar("command_id", default=None)

FIELDS: tuple[tuple[str, ContextVar[str | None]], ...] = (
    ("request_id", request_id),
    ("order_id", order_id),
    ("account_id", account_id),
    ("command_id", command_id),
)
"""Every correlation field a log line may carry, with the variable that holds it."""

_VARS = dict(FIELDS)


def new_request_id() -> str:
    """A fresh id (32 hex digits) for a request or record that came without one."""
    return uuid.uuid4().hex


def sane(candidate: str | None) -> str | None:
    """``candidate`` if a caller may name a request with it, else None."""
    if candidate is not None and _SANE.fullmatch(candidate):
        return candidate
    return None


def from_caller(candidate: str | None) -> str:
    """The caller's id when it is sane, else a new one (a bad id never refuses a request)."""
    return sane(candidate) or new_request_id()


def from_record(
    headers: Iterable[tuple[str, bytes]], topic: str, partition: int, offset: int
) -> str:
    """The request id of a Kafka record: its ``request_id`` header when sane, else one named
    after the record itself (``topic/partition/offset``): cheap, the same on every replay, and it
    says where to find the record."""
    for key, value in headers:
        if key == KAFKA_HEADER:
            try:
                given = sane(value.decode("ascii"))
            except (UnicodeDecodeError, AttributeError):
                given = None
            if given is not None:
                return given
            break
    return f"{topic}/{partition}/{offset}"


def kafka_headers(request: str | None) -> list[tuple[str, bytes]]:
    """The record headers that carry a command's request id (none without one)."""
    return [] if request is None else [(KAFKA_HEADER, request.encode("ascii"))]


def bind(**fields: str | None) -> None:
    """Set correlation fields for the rest of the current context (a request's task: the API
    middleware resets them when the request ends)."""
    for name, value in fields.items():
        _VARS[name].set(value)


@contextmanager
def scope(**fields: str | None) -> Iterator[None]:
    """Set correlation fields inside the ``with`` block only; whatever is bound inside it
    (these fields or others) is undone when it ends."""
    unknown = set(fields) - set(_VARS)
    if unknown:
        raise TypeError(f"not correlation fields: {', '.join(sorted(unknown))}")
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = [
        (var, var.set(fields[name] if name in fields else var.get())) for name, var in FIELDS
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current() -> dict[str, str]:
    """The correlation fields set now (the unset ones left out)."""
    found: dict[str, str] = {}
    for name, var in FIELDS:
        value = var.get()
        if value is not None:
            found[name] = value
    return found
