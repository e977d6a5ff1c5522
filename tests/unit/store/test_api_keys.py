"""Making API keys: what is minted, and what is refused before anything is stored."""

from __future__ import annotations

import pytest

from oms.config import Settings
from oms.domain.access import Role, key_digest, split_key
from oms.domain.accounts import InvalidAccountId
from oms.store.api_keys import create_key, key_document, key_record, mint_key

# Nothing listens here: a test that reached MongoDB would fail, not pass.
NOWHERE = Settings(mongo_url="mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200")


def test_mint_key_when_made_then_token_carries_id_and_a_secret_only_its_digest_is_kept() -> None:
    # Act
    issued = mint_key(Role.TRADER, frozenset({"alice"}), "bot", 12.5)

    # Assert
    parts = split_key(issued.key)
    assert parts is not None
    key_id, secret = parts
    assert key_id == issued.key_id == issued.record.key_id
    assert len(secret) == 43  # 256 bits, base64url
    assert issued.record.digest == key_digest(secret)
    document = key_document(issued.record)
    assert secret not in repr(document)
    assert key_record(document) == issued.record


def test_mint_key_when_made_twice_then_ids_and_secrets_differ() -> None:
    first, second = (mint_key(Role.ADMIN, frozenset(), "", 0.0) for _ in range(2))
    assert first.key_id != second.key_id
    assert first.key != second.key


@pytest.mark.parametrize("account", ["VENUE", "fees", "no spaces", ""])
def test_create_key_when_an_account_is_reserved_or_malformed_then_refused_before_storing(
    account: str,
) -> None:
    with pytest.raises(InvalidAccountId):
        create_key(NOWHERE, Role.TRADER, frozenset({account}))
