"""Credentials for tests: API keys made by the same code as ``oms keys create``.

Unit tests keep keys in memory (``MemoryKeyDirectory``); integration and e2e tests store them in
the run's MongoDB database with ``oms.store.api_keys.create_key``. Either way a test holds the
token and sends it as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import time

from oms.api.credentials import Authenticator
from oms.config import Settings
from oms.domain.access import Role
from oms.store.api_keys import create_key, mint_key
from oms.store.memory import MemoryKeyDirectory, MemoryTicketStore


def bearer(token: str) -> dict[str, str]:
    """The header that presents ``token``."""
    return {"Authorization": f"Bearer {token}"}


class MemoryKeys:
    """An authenticator over keys in memory, and a way to make them."""

    def __init__(self, settings: Settings) -> None:
        self.directory = MemoryKeyDirectory()
        self.tickets = MemoryTicketStore()
        self.authenticator = Authenticator(settings, self.directory, self.tickets, None)

    def token(self, role: Role = Role.ADMIN, accounts: tuple[str, ...] = (), name: str = "") -> str:
        """A new key's token (stored as its digest, as ``oms keys create`` does)."""
        issued = mint_key(role, frozenset(accounts), name, time.time())
        self.directory.add(issued.record)
        return issued.key

    def headers(self, role: Role = Role.ADMIN, accounts: tuple[str, ...] = ()) -> dict[str, str]:
        """``Authorization`` for a new key."""
        return bearer(self.token(role, accounts))


def admin_headers(settings: Settings) -> dict[str, str]:
    """``Authorization`` for a new admin key stored in the settings' MongoDB database."""
    return bearer(create_key(settings, Role.ADMIN, name="tests").key)
