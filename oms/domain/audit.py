"""The audit trail: who changed an account, a limit, a kill switch or a key, when, and from where.

An entry is written once the change it records is (the accounts store has it, the key is
stored), never before: the trail holds no change that did not happen. It names the caller the
way logs do (``key:<key id>``, ``sub:<JWT subject>``, or ``cli:<user>@<host>`` for ``oms keys``),
never a credential: an entry has no field a secret could go into, and ``detail`` carries only
what changed (balances, limits, a state, a key's id, role and accounts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

# An entry's id: its time in microseconds (20 digits) and 8 random hex digits, so ids sort by
# time; the cursor of ``GET /api/audit`` is one.
ENTRY_ID = re.compile(r"[0-9]{20}-[0-9a-f]{8}")


class AuditAction(StrEnum):
    """What an entry records: the closed set of changes the audit keeps."""

    ACCOUNT_OPENED = "ACCOUNT_OPENED"
    LIMITS_CHANGED = "LIMITS_CHANGED"
    KILL_SWITCH_CHANGED = "KILL_SWITCH_CHANGED"  # one account's, or the global one (no account)
    KEY_CREATED = "KEY_CREATED"
    KEY_REVOKED = "KEY_REVOKED"
    GLOBAL_LIMITS_CHANGED = "GLOBAL_LIMITS_CHANGED"  # the firm-wide caps (no account)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One recorded change.

    ``who``: the caller (``key:<id>``, ``sub:<subject>``, ``cli:<user>@<host>``) and ``role``
    its role; ``source``: where the request came from (the client address, or the host of the
    CLI); ``account_id``: the account changed (None for the global switch and for keys);
    ``detail``: what changed, JSON-ready (strings, numbers, lists, objects); ``entry_id``: given
    by the store, sortable by time (newest last), the cursor of ``GET /api/audit``.
    """

    action: AuditAction
    who: str
    at: float
    role: str | None = None
    source: str | None = None
    account_id: str | None = None
    detail: Mapping[str, object] = field(default_factory=dict)
    request_id: str | None = None
    entry_id: str = ""
