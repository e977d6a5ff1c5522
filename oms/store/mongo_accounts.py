"""MongoDB accounts: each account, and the global kill switch, as insert-only versions."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from oms.codec import (
    CodecError,
    balances_from_dict,
    balances_to_dict,
    limits_from_dict,
    limits_to_dict,
)
from oms.domain.errors import AccountExists, StoreError, UnknownAccount
from oms.domain.limits import RiskLimits, TradingState
from oms.engine.ports import AccountRecord, AccountRepository
from oms.store.documents import AccountDocument, KillSwitchDocument

__all__ = ["MongoAccountRepository"]

logger = logging.getLogger(__name__)

Raw = dict[str, Any]


class MongoAccountRepository(AccountRepository):
    """Accounts as insert-only versions ``{account_id}:{version:06d}`` (no updates, as orders)."""

    def __init__(self, database: AsyncDatabase[Raw]) -> None:
        """Use ``database`` (its client belongs to the caller's loop); run ``init_database`` once."""
        self._collection: AsyncCollection[Raw] = database[AccountDocument.Settings.name]
        self._switches: AsyncCollection[Raw] = database[KillSwitchDocument.Settings.name]

    @staticmethod
    def _document(record: AccountRecord) -> Raw:
        return {
            "_id": f"{record.account_id}:{record.version:06d}",
            "account_id": record.account_id,
            "version": record.version,
            "balances": balances_to_dict(record.balances),
            "limits": None if record.limits is None else limits_to_dict(record.limits),
            "opened_at": record.opened_at,
            "trading_state": record.trading_state.value,
        }

    @staticmethod
    def _record(raw: Raw) -> AccountRecord:
        document = AccountDocument.model_validate(raw)
        return AccountRecord(
            account_id=document.account_id,
            balances=balances_from_dict(document.balances),
            limits=None if document.limits is None else limits_from_dict(document.limits),
            opened_at=document.opened_at,
            version=document.version,
            trading_state=TradingState(document.trading_state),
        )

    async def open(self, record: AccountRecord) -> None:
        """Insert version 1; a taken id is a duplicate key."""
        if record.version != 1:
            raise StoreError("a new account starts at version 1")
        try:
            await self._collection.insert_one(self._document(record))
        except DuplicateKeyError as exc:
            raise AccountExists(f"account {record.account_id!r} already exists") from exc

    async def set_limits(self, account_id: str, limits: RiskLimits) -> AccountRecord:
        """Insert the next version with the new limits (retried if another writer raced us)."""
        return await self._next_version(account_id, limits=limits)

    async def set_trading_state(self, account_id: str, state: TradingState) -> AccountRecord:
        """Insert the next version with the new kill switch (retried as ``set_limits``)."""
        return await self._next_version(account_id, trading_state=state)

    async def _next_version(self, account_id: str, **changes: Any) -> AccountRecord:
        for _ in range(5):
            held = await self.get(account_id)
            if held is None:
                raise UnknownAccount(f"account {account_id!r} is not known")
            record = dataclasses.replace(held, **changes, version=held.version + 1)
            try:
                await self._collection.insert_one(self._document(record))
            except DuplicateKeyError:
                continue
            return record
        raise StoreError(f"account {account_id!r} changes too often to record the change")

    async def set_global_trading_state(self, state: TradingState) -> None:
        """Insert the next version of the global kill switch (retried if another writer raced)."""
        for _ in range(5):
            version = await self._global_version() + 1
            document = {
                "_id": f"global:{version:06d}",
                "version": version,
                "trading_state": state.value,
                "at": time.time(),
            }
            try:
                await self._switches.insert_one(document)
            except DuplicateKeyError:
                continue
            return
        raise StoreError("the global kill switch changes too often to record the change")

    async def global_trading_state(self) -> TradingState:
        """The latest readable version of the global kill switch, ACTIVE if none was recorded.

        A version that does not read is passed over (logged), never fatal: the one before it
        is what an operator last set that can be known.
        """
        async for raw in self._switches.find({}).sort("version", -1):
            try:
                return TradingState(KillSwitchDocument.model_validate(raw).trading_state)
            except ValueError:  # pydantic's ValidationError is one too
                logger.warning("global kill switch %r does not read; the one before it holds",
                               raw.get("_id"))  # fmt: skip
        return TradingState.ACTIVE

    async def _global_version(self) -> int:
        cursor = self._switches.find({}).sort("version", -1).limit(1)
        async for raw in cursor:
            return int(raw["version"])
        return 0

    async def get(self, account_id: str) -> AccountRecord | None:
        """The highest version of the account."""
        cursor = self._collection.find({"account_id": account_id}).sort("version", -1).limit(1)
        async for raw in cursor:
            return self._record(raw)
        return None

    async def load_all(self) -> Sequence[AccountRecord]:
        """Every account's highest version, in opening order (unreadable ones left out)."""
        records, _ = await self.load_readable()
        return records

    async def load_readable(self) -> tuple[list[AccountRecord], list[str]]:
        """Every account's highest version, in opening order; and the ``_id`` of each document
        that does not read as an account (left out: for the caller to report, never fatal)."""
        latest: dict[str, Raw] = {}
        unreadable: list[str] = []
        async for raw in self._collection.find({}):
            account_id, version = raw.get("account_id"), raw.get("version")
            if not isinstance(account_id, str) or not isinstance(version, int):
                unreadable.append(str(raw.get("_id")))
                continue
            held = latest.get(account_id)
            if held is None or version > held["version"]:
                latest[account_id] = raw
        records: list[AccountRecord] = []
        for raw in latest.values():
            try:
                records.append(self._record(raw))
            except (ValidationError, CodecError, ValueError):
                # The latest version decides the account: an older one would bring back
                # balances or limits an operator has since replaced.
                unreadable.append(str(raw.get("_id")))
        records.sort(key=lambda r: (r.opened_at, r.account_id))
        return records, unreadable
