"""Ids assigned at the door: an order's is derived from who it is when the request says (a
client order id, an idempotency key), else random, sortable by creation time."""

from __future__ import annotations

import os
import time

from oms.domain.order_ids import client_order_id_order, crockford32, idempotency_key_order


def new_id(now: float | None = None) -> str:
    """A ULID-like id: 26 characters, 48 bits of milliseconds then 80 random bits.

    Ids made in a later millisecond sort after earlier ones, so an order id says roughly when
    the order was placed and an index on it is append-mostly.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    return crockford32((millis << 80) | int.from_bytes(os.urandom(10), "big"))


def order_id_for(account_id: str, client_order_id: str | None, idempotency_key: str | None) -> str:
    """The id of the order a request places.

    The client order id names the order when there is one (so it is unique per account whether
    or not a key comes with it); else the idempotency key does; else the id is new. A retry of
    a named order gets the same id, so it can only find or replay the first one
    (``oms.domain.order_ids``).
    """
    if client_order_id is not None:
        return client_order_id_order(account_id, client_order_id)
    if idempotency_key is not None:
        return idempotency_key_order(account_id, idempotency_key)
    return new_id()
