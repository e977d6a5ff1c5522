"""The audit trail in memory: the unit tests' ``AuditLog`` (``oms.api.audit``)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping

from pymongo.errors import WriteError

from oms.domain.audit import AuditEntry
from oms.store.mongo_audit import new_entry_id

_BAD_VALUE = 2  # MongoDB's code for a document it refuses (FerretDB answers the same)


def _refused_key(value: object) -> str | None:
    """The first key MongoDB and FerretDB refuse in ``value`` (a dot, a leading "$"), or None."""
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if "." in str(key) or str(key).startswith("$"):
                return str(key)
            found = _refused_key(inner)
            if found is not None:
                return found
    elif isinstance(value, list | tuple):
        for inner in value:
            found = _refused_key(inner)
            if found is not None:
                return found
    return None


__all__ = ["MemoryAuditLog"]


class MemoryAuditLog:
    """Entries in a list, read newest first as ``MongoAuditLog`` reads them."""

    def __init__(self) -> None:
        """An empty trail."""
        self.entries: list[AuditEntry] = []

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Keep ``entry``; the entry as kept (with its id). Refused as the server refuses it
        (``WriteError``) when its detail holds a key a stored document may not have: a route
        that writes a caller's text as a key fails here, not first on the real server."""
        refused = _refused_key(entry.detail)
        if refused is not None:
            raise WriteError(f'invalid key: "{refused}"', _BAD_VALUE)
        stored = dataclasses.replace(entry, entry_id=new_entry_id(entry.at or time.time()))
        self.entries.append(stored)
        return stored

    async def page(self, before: str | None, limit: int) -> list[AuditEntry]:
        """Up to ``limit`` entries older than ``before`` (None: the newest), newest first."""
        older = [e for e in self.entries if before is None or e.entry_id < before]
        return sorted(older, key=lambda e: e.entry_id, reverse=True)[:limit]
