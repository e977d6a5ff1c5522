"""Stored records that start-up and recovery leave out, and why.

Start-up never dies on a stored record it does not like: an account whose id the system keeps
for itself (``VENUE``: every later start would fail on ``AccountExists``) or that breaks the id
grammar, a document that does not read as an account or an order, an opening the engine refuses.
Each is left out; each pass says so in one log line (the count, by kind and reason, and the first
ids), and ``/metrics`` shows how many distinct records this replica has left out
(``oms_recovery_skipped_records``). Whoever mends the data restarts the replica.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from oms.domain.accounts import InvalidAccountId, check_account_id
from oms.engine.ports import AccountRecord

logger = logging.getLogger(__name__)

SHOWN = 5  # ids named in the log line; the rest are counted only


class SkipReason(StrEnum):
    """Why a stored record was left out."""

    RESERVED_ACCOUNT_ID = "RESERVED_ACCOUNT_ID"
    INVALID_ACCOUNT_ID = "INVALID_ACCOUNT_ID"
    UNREADABLE_DOCUMENT = "UNREADABLE_DOCUMENT"
    REFUSED_BY_ENGINE = "REFUSED_BY_ENGINE"


@dataclass(frozen=True, slots=True)
class Skip:
    """One stored record left out: an account or an order, its id, and why."""

    kind: str  # "account" or "order"
    record_id: str
    reason: SkipReason
    detail: str = ""


def screen_accounts(records: Iterable[AccountRecord]) -> tuple[list[AccountRecord], list[Skip]]:
    """The records whose id a client's account may have; a ``Skip`` for each other one."""
    usable: list[AccountRecord] = []
    skips: list[Skip] = []
    for record in records:
        try:
            check_account_id(record.account_id)
        except InvalidAccountId as refused:
            skips.append(Skip("account", record.account_id, SkipReason(refused.code)))
            continue
        usable.append(record)
    return usable, skips


def unreadable(kind: str, ids: Iterable[str]) -> list[Skip]:
    """A ``Skip`` for each document of ``kind`` (by ``_id``) that did not read."""
    return [Skip(kind, record_id, SkipReason.UNREADABLE_DOCUMENT) for record_id in ids]


class Skips:
    """What this replica left out so far: reported once per pass, counted for ``/metrics``."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str]] = set()

    @property
    def distinct(self) -> int:
        """Distinct records (kind and id) left out since the process started."""
        return len(self._seen)

    def report(self, stage: str, skips: Sequence[Skip]) -> None:
        """One warning for the pass ``stage`` (nothing when nothing was left out)."""
        if not skips:
            return
        self._seen.update((skip.kind, skip.record_id) for skip in skips)
        counts = Counter(f"{skip.kind} {skip.reason.value}" for skip in skips)
        shown = ", ".join(
            f"{skip.kind} {skip.record_id!r} ({skip.reason.value}{': ' if skip.detail else ''}"
            f"{skip.detail})"
            for skip in skips[:SHOWN]
        )
        logger.warning(
            "%s left out %d stored records (%s); first: %s",
            stage, len(skips), ", ".join(f"{n} {what}" for what, n in sorted(counts.items())),
            shown,
        )  # fmt: skip
