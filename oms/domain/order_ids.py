"""Who an order is decides its id, so that every retry of it names the same order.

An order placed with a ``client_order_id`` is that account's order of that name; one placed over
REST with only an ``Idempotency-Key`` is the order of that key. Its id is a hash of that
identity. The engine places an order id once (a second ``PlaceOrder`` for it is a replay that
changes nothing) and the id is the ``_id`` of the order's MongoDB document, so a retry can never
make a second order, however the door forgot the first one (a Redis restart, an eviction, an
expired key, a crash between the claim and the send). Redis only makes the answer quick and
catches a key reused for another body; it no longer carries the guarantee.

Both REST (``oms.api.orders``) and the Kafka decoder (``oms.stream.codecs``) use these, so an
order produced straight onto ``orders`` with a client order id gets the id REST would give it.
"""

from __future__ import annotations

import hashlib

# Crockford's base32 (no I, L, O, U), as the door's random ids: 26 characters hold 128 bits.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_LENGTH = 26
_PAIRS = [high + low for high in _ALPHABET for low in _ALPHABET]  # 1,024: every 10-bit value
_PAIR_SHIFTS = range((_LENGTH - 2) * 5, -1, -10)
# Keeps these hashes apart from any other blake2b use of the same bytes.
_PERSON = b"oms-order-id"


def crockford32(value: int) -> str:
    """The low 130 bits of ``value`` as 26 characters of Crockford's base32, most significant
    first."""
    # Ten bits (two characters) a step, from a table: half the steps of one a character, on
    # every order's way in (its id is derived from its identity on each door and on decode).
    pairs = _PAIRS
    return "".join([pairs[(value >> shift) & 1023] for shift in _PAIR_SHIFTS])


def _derived(kind: str, account_id: str, name: str) -> str:
    # NUL separates the parts: identifiers and header values (printable ASCII) never hold one,
    # so two different identities never hash the same bytes (``a`` + ``b:c`` vs ``a:b`` + ``c``).
    identity = "\x00".join((kind, account_id, name)).encode()
    digest = hashlib.blake2b(identity, digest_size=16, person=_PERSON).digest()
    return crockford32(int.from_bytes(digest, "big"))


def client_order_id_order(account_id: str, client_order_id: str) -> str:
    """The id of the account's order named ``client_order_id`` (26 characters, stable)."""
    return _derived("client", account_id, client_order_id)


def idempotency_key_order(account_id: str, key: str) -> str:
    """The id of the account's order placed with the idempotency ``key`` and no client order id."""
    return _derived("key", account_id, key)
