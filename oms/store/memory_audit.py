"""The audit trail in memory: the unit tests' ``AuditLog`` (``oms.api.audit``)."""

from __future__ import annotations

import dataclasses
import time

from oms.domain.audit import AuditEntry
from oms.store.mongo_audit import new_entry_id

__all__ = ["MemoryAuditLog"]


class MemoryAuditLog:
    """Entries in a list, read newest first as ``MongoAuditLog`` reads them."""

    def __init__(self) -> None:
        """An empty trail."""
        self.entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Keep ``entry``; the entry as kept (with its id)."""
        stored = dataclasses.replace(entry, entry_id=new_entry_id(entry.at or time.time()))
        self.entries.append(stored)
        return stored

    async def page(self, before: str | None, limit: int) -> list[AuditEntry]:
        """Up to ``limit`` entries older than ``before`` (None: the newest), newest first."""
        older = [e for e in self.entries if before is None or e.entry_id < before]
        return sorted(older, key=lambda e: e.entry_id, reverse=True)[:limit]
