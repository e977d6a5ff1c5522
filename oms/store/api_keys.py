"""API keys in MongoDB (collection ``api_keys``): only each secret's digest is stored.

One document per key, ``_id`` its key id: ``digest`` (SHA-256 of the secret, hex), ``role``,
``accounts``, ``name``, ``created_at`` and, once revoked, ``revoked_at``. Revoking marks the
key rather than deleting it, so ``oms keys list`` still shows who had which key and when.

``create_key``, ``list_keys`` and ``revoke_key`` are what ``oms keys`` runs: synchronous, on
their own connection from the settings, so the first admin key exists before any server runs.
Tests and ``oms demo`` call ``create_key`` too: one code path makes every key.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase

from oms.config import Settings
from oms.domain.access import ApiKey, Role, compose_key, key_digest
from oms.domain.accounts import check_account_id

COLLECTION = "api_keys"

Raw = dict[str, Any]


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A key just made: its id and the one copy of its token (``oms_<id>_<secret>``)."""

    key_id: str
    key: str
    record: ApiKey


def mint_key(role: Role, accounts: frozenset[str], name: str, created_at: float) -> IssuedKey:
    """A new key: 64 random bits of id, 256 of secret (``secrets``: the OS's CSPRNG)."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    record = ApiKey(
        key_id=key_id,
        digest=key_digest(secret),
        role=role,
        accounts=accounts,
        name=name,
        created_at=created_at,
    )
    return IssuedKey(key_id, compose_key(key_id, secret), record)


def key_document(record: ApiKey) -> Raw:
    """The stored form of a key (no secret: there is none to store)."""
    return {
        "_id": record.key_id,
        "digest": record.digest,
        "role": record.role.value,
        "accounts": sorted(record.accounts),
        "name": record.name,
        "created_at": record.created_at,
        "revoked_at": record.revoked_at,
    }


def key_record(raw: Raw) -> ApiKey:
    """A stored key read back."""
    return ApiKey(
        key_id=str(raw["_id"]),
        digest=str(raw["digest"]),
        role=Role(raw["role"]),
        accounts=frozenset(raw.get("accounts") or ()),
        name=str(raw.get("name") or ""),
        created_at=float(raw["created_at"]),
        revoked_at=None if raw.get("revoked_at") is None else float(raw["revoked_at"]),
    )


class MongoKeyDirectory:
    """The API's view of the keys (``oms.api.credentials.KeyDirectory``)."""

    def __init__(self, database: AsyncDatabase[Raw]) -> None:
        """Read keys from ``database`` (its client belongs to the caller's loop)."""
        self._collection: AsyncCollection[Raw] = database[COLLECTION]

    async def find_key(self, key_id: str) -> ApiKey | None:
        """The key with this id (revoked ones too), or None."""
        raw = await self._collection.find_one({"_id": key_id})
        return None if raw is None else key_record(raw)


def _collection(settings: Settings) -> tuple[MongoClient[Raw], Any]:
    client: MongoClient[Raw] = MongoClient(settings.mongo_url, serverSelectionTimeoutMS=5000)
    return client, client[settings.mongo_database][COLLECTION]


def create_key(
    settings: Settings,
    role: Role,
    accounts: frozenset[str] = frozenset(),
    name: str = "",
    *,
    clock: Any = time.time,
) -> IssuedKey:
    """Make a key and store its digest; the token is in the answer only.

    Raises ``InvalidAccountId`` for an account no client may hold (malformed, or reserved).
    """
    for account_id in accounts:
        check_account_id(account_id)
    issued = mint_key(role, accounts, name, clock())
    client, collection = _collection(settings)
    try:
        collection.insert_one(key_document(issued.record))
    finally:
        client.close()
    return issued


def list_keys(settings: Settings) -> list[ApiKey]:
    """Every key, oldest first (revoked ones too)."""
    client, collection = _collection(settings)
    try:
        return sorted((key_record(raw) for raw in collection.find({})), key=lambda k: k.created_at)
    finally:
        client.close()


def revoke_key(settings: Settings, key_id: str, *, clock: Any = time.time) -> bool:
    """Mark the key revoked (False: no such key, or revoked already). Every replica stops
    taking it once its cached copy expires (``api_key_cache_ttl_s``)."""
    client, collection = _collection(settings)
    try:
        result = collection.update_one(
            {"_id": key_id, "revoked_at": None}, {"$set": {"revoked_at": clock()}}
        )
    finally:
        client.close()
    return bool(result.modified_count == 1)
