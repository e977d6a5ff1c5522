"""An order's id is a function of who the order is: its account and client order id, or key."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from oms.api.ids import new_id, order_id_for
from oms.domain.accounts import IDENTIFIER
from oms.domain.order_ids import client_order_id_order, crockford32, idempotency_key_order

_CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")


def _one_character_a_step(value: int) -> str:
    """Crockford's base32 as written first: five bits a character, least significant first."""
    chars = []
    for _ in range(26):
        chars.append("0123456789ABCDEFGHJKMNPQRSTVWXYZ"[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def test_derive_when_an_id_is_in_the_readme_then_it_is_still_that_id() -> None:
    # Ids are stored (an order's MongoDB _id) and derived again on every retry: they never change.
    assert client_order_id_order("alice", "gw-42") == "5F5X9ABJRH370XB6NVYJ0HGB4X"


@given(st.integers(min_value=0, max_value=2**130 - 1))
def test_encode_when_any_130_bit_value_then_the_same_characters_as_one_a_step(value: int) -> None:
    # Invariant: the table's encoding is the one every stored id was made with.
    assert crockford32(value) == _one_character_a_step(value)


def test_derive_when_the_same_account_and_client_order_id_then_the_same_id() -> None:
    first = client_order_id_order("alice", "gw-42")
    again = client_order_id_order("alice", "gw-42")

    assert first == again
    assert _CROCKFORD.fullmatch(first)
    assert IDENTIFIER.fullmatch(first)  # a valid order id on every path (REST, Kafka, store)


def test_derive_when_the_account_or_the_name_differs_then_another_id() -> None:
    ids = {
        client_order_id_order("alice", "gw-42"),
        client_order_id_order("bob", "gw-42"),
        client_order_id_order("alice", "gw-43"),
        idempotency_key_order("alice", "gw-42"),  # a key is not a client order id
    }

    assert len(ids) == 4


def test_derive_when_the_parts_only_regroup_then_another_id() -> None:
    # "a" + "b:c" and "a:b" + "c" read the same when concatenated with ':'
    assert client_order_id_order("a", "b:c") != client_order_id_order("a:b", "c")
    assert idempotency_key_order("a", "key:x") != client_order_id_order("a", "x")


def test_order_id_for_when_a_client_order_id_is_given_then_it_names_the_order_key_or_not() -> None:
    with_key = order_id_for("alice", "gw-42", "k-1")
    with_other_key = order_id_for("alice", "gw-42", "k-2")
    without_key = order_id_for("alice", "gw-42", None)

    assert with_key == with_other_key == without_key == client_order_id_order("alice", "gw-42")


def test_order_id_for_when_only_a_key_is_given_then_the_key_names_the_order() -> None:
    assert order_id_for("alice", None, "k-1") == idempotency_key_order("alice", "k-1")
    assert order_id_for("alice", None, "k-1") != order_id_for("bob", None, "k-1")


def test_order_id_for_when_neither_is_given_then_a_new_time_ordered_id() -> None:
    first = order_id_for("alice", None, None)
    second = order_id_for("alice", None, None)

    assert first != second
    assert _CROCKFORD.fullmatch(first)
    assert new_id(now=1.0) < new_id(now=2.0)
