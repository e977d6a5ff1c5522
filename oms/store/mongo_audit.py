"""MongoDB audit trail (collection ``audit``): insert-only entries, read newest first by ``_id``.

An entry's ``_id`` is its time in microseconds (20 digits) and 8 random hex digits: it sorts by
time, so a page is ``_id < cursor`` sorted descending, which every backend (FerretDB included,
which reads only ``_id`` cheaply) answers without an extra index. Replicas' clocks may disagree
by a little: entries a few milliseconds apart may list in the other order, never be lost.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import socket
import time
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.database import Database

from oms.domain.audit import AuditAction, AuditEntry

__all__ = ["AUDIT_COLLECTION", "MongoAuditLog", "local_operator", "record_now"]

logger = logging.getLogger(__name__)

AUDIT_COLLECTION = "audit"

Raw = dict[str, Any]


def new_entry_id(now: float) -> str:
    """A time-sortable, unique id for an entry made at ``now`` (seconds)."""
    return f"{int(now * 1_000_000):020d}-{os.urandom(4).hex()}"


def local_operator() -> tuple[str, str]:
    """Who runs this process and where, for changes made straight on MongoDB (``oms keys``):
    ``cli:<user>@<host>`` and the host. The CLI has no key to name: whoever can reach the
    database is the operator, so the audit names the account and machine it ran from."""
    host = socket.gethostname()
    try:
        user = getpass.getuser()
    except OSError:  # no login name in the environment or the password database (a container)
        user = f"uid{os.getuid()}"
    return f"cli:{user}@{host}", host


def record_now(database: Database[Raw], entry: AuditEntry) -> AuditEntry:
    """``MongoAuditLog.record`` for synchronous callers (``oms keys``, on its own client)."""
    stored = dataclasses.replace(entry, entry_id=new_entry_id(entry.at or time.time()))
    database[AUDIT_COLLECTION].insert_one(audit_document(stored))
    return stored


class MongoAuditLog:
    """``AuditLog`` on MongoDB (``oms.api.audit``); the CLI writes key changes through it too."""

    def __init__(self, database: AsyncDatabase[Raw]) -> None:
        """Use ``database`` (its client belongs to the caller's loop)."""
        self._collection: AsyncCollection[Raw] = database[AUDIT_COLLECTION]

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Insert ``entry``; the entry as stored (with its id)."""
        stored = dataclasses.replace(entry, entry_id=new_entry_id(entry.at or time.time()))
        await self._collection.insert_one(audit_document(stored))
        return stored

    async def page(self, before: str | None, limit: int) -> list[AuditEntry]:
        """Up to ``limit`` entries older than the entry ``before`` (None: the newest),
        newest first. A document that does not read as an entry is passed over (logged)."""
        query: Raw = {} if before is None else {"_id": {"$lt": before}}
        entries: list[AuditEntry] = []
        async for raw in self._collection.find(query).sort("_id", -1).limit(limit):
            try:
                entries.append(_entry(raw))
            except (KeyError, TypeError, ValueError):
                logger.warning("audit entry %r does not read; left out", raw.get("_id"))
        return entries


def audit_document(entry: AuditEntry) -> Raw:
    """The stored form of an entry."""
    return {
        "_id": entry.entry_id,
        "action": entry.action.value,
        "who": entry.who,
        "role": entry.role,
        "at": entry.at,
        "source": entry.source,
        "account_id": entry.account_id,
        "detail": dict(entry.detail),
        "request_id": entry.request_id,
    }


def _entry(raw: Raw) -> AuditEntry:
    detail = raw.get("detail") or {}
    if not isinstance(detail, dict):
        raise TypeError("detail is not an object")
    return AuditEntry(
        action=AuditAction(raw["action"]),
        who=str(raw["who"]),
        at=float(raw["at"]),
        role=raw.get("role"),
        source=raw.get("source"),
        account_id=raw.get("account_id"),
        detail=detail,
        request_id=raw.get("request_id"),
        entry_id=str(raw["_id"]),
    )
