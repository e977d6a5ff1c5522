"""The internal hop's signature: the caller another replica resolved, bound to the request."""

from __future__ import annotations

from oms.api.identity import Caller
from oms.api.internal_hop import MAX_AGE_S, HopSigner
from oms.domain.access import Role

WHO = Caller(Role.TRADER, frozenset({"a1"}), key_id="k1", client="10.0.0.9")


def test_check_when_signed_with_the_same_token_then_gives_the_caller_back() -> None:
    # Arrange
    signer = HopSigner("secret", clock=lambda: 1000.0)
    header = signer.sign(WHO, "POST", "/api/risk/validate", b'{"a":1}')

    # Act
    who = signer.check(header, "POST", "/api/risk/validate", b'{"a":1}')

    # Assert
    assert who == WHO


def test_check_when_any_part_differs_then_trusts_nobody() -> None:
    # Arrange
    signer = HopSigner("secret", clock=lambda: 1000.0)
    header = signer.sign(WHO, "GET", "/api/accounts/a1", b"")
    at, caller, mac = header.split(".")
    admin = HopSigner("secret").sign(Caller(Role.ADMIN, frozenset()), "GET", "/x", b"").split(".")

    # Act
    answers = [
        HopSigner("other", clock=lambda: 1000.0).check(header, "GET", "/api/accounts/a1", b""),
        signer.check(header, "GET", "/api/accounts/a2", b""),
        signer.check(header, "DELETE", "/api/accounts/a1", b""),
        signer.check(header, "GET", "/api/accounts/a1", b"body"),
        signer.check(f"{at}.{admin[1]}.{mac}", "GET", "/api/accounts/a1", b""),
        signer.check(f"{at}.{caller}", "GET", "/api/accounts/a1", b""),
        HopSigner("", clock=lambda: 1000.0).check(header, "GET", "/api/accounts/a1", b""),
    ]

    # Assert
    assert answers == [None] * len(answers)


def test_check_when_older_than_the_bound_then_trusts_nobody() -> None:
    # Arrange
    header = HopSigner("secret", clock=lambda: 1000.0).sign(WHO, "GET", "/p", b"")
    later = HopSigner("secret", clock=lambda: 1000.0 + MAX_AGE_S + 1)

    # Act
    who = later.check(header, "GET", "/p", b"")

    # Assert
    assert who is None
