"""Ids assigned at the door: sortable by creation time, unique without coordination."""

from __future__ import annotations

import os
import time

# Crockford's base32: no I, L, O, U, so an id read aloud or copied by hand stays unambiguous.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(now: float | None = None) -> str:
    """A ULID-like id: 26 characters, 48 bits of milliseconds then 80 random bits.

    Ids made in a later millisecond sort after earlier ones, so an order id says roughly when
    the order was placed and an index on it is append-mostly.
    """
    millis = int((time.time() if now is None else now) * 1000) & ((1 << 48) - 1)
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(chars))
