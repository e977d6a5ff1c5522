"""Correlation ids: which request a command, an event and a log line belong to.

A request id is taken from the caller (``X-Request-ID`` over HTTP, the ``request_id`` header of
a record on ``orders``) when it is a sane one, else made here. It rides on the command (its
``request_id`` field), on the Kafka record of the command (a header, so the record's JSON schema
does not change), on the order event the command causes, and on every log line written while
the request or the record is handled: those read the context below (``scope``, ``bind``), which
the API's middleware and the routes set (``oms.logs`` puts it on each record); a line written
outside that context (the engine's thread, the ingestion's batches) passes the ids it knows as
``extra``.

Pure: no I/O, nothing of the project imported, so every layer may use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

HTTP_HEADER = "X-Request-ID"
KAFKA_HEADER = "request_id"

# What a caller may send as its id: printable ASCII without spaces (so a log line cannot be
# split or forged with it), short enough to log on every line.
_SANE = re.compile(r"[\x21-\x7e]{1,128}")

FIELDS = ("request_id", "order_id", "account_id", "command_id")
"""Every correlation field a log line may carry, in the order a text line shows them."""
_NAMES = frozenset(FIELDS)

# One variable holding the fields of the current request or record, rather than one variable
# per field: entering a request is one set and one reset, binding a field is a dict store (the
# access path pays this on every request).
_fields: ContextVar[dict[str, str] | None] = ContextVar("correlation", default=None)


def new_request_id() -> str:
    """A fresh id (32 hex digits) for a request or record that came without one.

    Sixteen bytes of the OS's randomness, as ``uuid4`` draws, without building a ``UUID``: one
    is made for every request, and ``uuid.uuid4().hex`` took 2.3 us of the door's CPU where this
    takes 0.4 (session 21). Nothing reads the id as a UUID: it only names the request.
    """
    return os.urandom(16).hex()


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
    """Set correlation fields (None clears one) for the rest of the current scope: a request's
    (the API middleware opens one per request), else the current context."""
    _check(fields)
    current = _fields.get()
    if current is None:
        current = {}
        _fields.set(current)
    for name, value in fields.items():
        if value is None:
            current.pop(name, None)
        else:
            current[name] = value


@contextmanager
def scope(**fields: str | None) -> Iterator[None]:
    """Correlation fields for the ``with`` block only, on top of the enclosing ones; whatever
    is bound inside it is undone when it ends."""
    _check(fields)
    inner = dict(_fields.get() or {})
    for name, value in fields.items():
        if value is None:
            inner.pop(name, None)
        else:
            inner[name] = value
    token = _fields.set(inner)
    try:
        yield
    finally:
        _fields.reset(token)


@contextmanager
def request(request_id: str) -> Iterator[None]:
    """A scope of its own for one request: its id, and nothing of any enclosing scope."""
    token = _fields.set({"request_id": request_id})
    try:
        yield
    finally:
        _fields.reset(token)


def get(name: str) -> str | None:
    """One correlation field as set now, or None."""
    current = _fields.get()
    return None if current is None else current.get(name)


def current() -> dict[str, str]:
    """The correlation fields set now (the unset ones left out)."""
    return dict(_fields.get() or {})


def _check(fields: dict[str, str | None]) -> None:
    if not _NAMES.issuperset(fields):
        unknown = ", ".join(sorted(set(fields) - _NAMES))
        raise TypeError(f"not correlation fields: {unknown}")
