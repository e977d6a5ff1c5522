"""The audit trail at the door: record who changed what, and ``GET /api/audit`` (admin).

Routes that change an account, its limits or a kill switch call ``record`` once the change is
recorded in the accounts store: the entry names the caller (``Caller.who``, never a
credential), its role, its client address, the request id, and what changed. If the entry
cannot be written the request fails (503 naming MongoDB) after the entry is logged at ERROR in
full, so the change is still on record somewhere; a retry of the change writes it again.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from aiohttp import web

from oms import correlation
from oms.api.identity import caller
from oms.api.problems import FieldError, invalid_query
from oms.domain.audit import ENTRY_ID, AuditAction, AuditEntry

logger = logging.getLogger(__name__)

DEFAULT_PAGE = 100
MAX_PAGE = 500


class AuditLog(Protocol):
    """Where audit entries are kept (collection ``audit`` in MongoDB: ``oms.store``)."""

    async def record(self, entry: AuditEntry) -> AuditEntry:
        """Keep ``entry``; the entry as kept (with its id)."""

    async def page(self, before: str | None, limit: int) -> Sequence[AuditEntry]:
        """Up to ``limit`` entries older than the entry ``before`` (None: newest), newest first."""


AUDIT_LOG_KEY = web.AppKey("audit_log", AuditLog)


async def record(
    request: web.Request,
    action: AuditAction,
    *,
    at: float,
    account_id: str | None = None,
    detail: Mapping[str, object] | None = None,
) -> AuditEntry:
    """Record that the request's caller did ``action`` (to ``account_id``) at ``at``."""
    who = caller(request)
    entry = AuditEntry(
        action=action,
        who=who.who,
        at=at,
        role=who.role.value,
        source=who.client,
        account_id=account_id,
        detail=dict(detail or {}),
        request_id=correlation.get("request_id"),
    )
    try:
        return await request.app[AUDIT_LOG_KEY].record(entry)
    except Exception:
        # The change is made: keep it on record in the log at least, then fail the request.
        logger.exception("audit entry not written: %s", orjson.dumps(entry_json(entry)).decode())
        raise


def entry_json(entry: AuditEntry) -> dict[str, Any]:
    """An entry as ``GET /api/audit`` lists it."""
    return {
        "id": entry.entry_id,
        "action": entry.action.value,
        "who": entry.who,
        "role": entry.role,
        "at": entry.at,
        "source": entry.source,
        "account_id": entry.account_id,
        "detail": dict(entry.detail),
        "request_id": entry.request_id,
    }


def _page_parameters(request: web.Request) -> tuple[str | None, int]:
    errors: list[FieldError] = []
    unknown = sorted(set(request.query) - {"limit", "cursor"})
    errors += [FieldError(name, "unknown parameter") for name in unknown]
    limit = DEFAULT_PAGE
    raw_limit = request.query.get("limit")
    if raw_limit is not None:
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= MAX_PAGE:
            errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_PAGE}"))
        else:
            limit = int(raw_limit)
    cursor = request.query.get("cursor")
    if cursor is not None and not ENTRY_ID.fullmatch(cursor):
        errors.append(FieldError("cursor", "is not a cursor this endpoint gave"))
    if errors:
        raise invalid_query(errors)
    return cursor, limit


async def get_audit(request: web.Request) -> web.Response:
    """``GET /api/audit?limit=&cursor=``: entries newest first, ``{items, next_cursor}``."""
    cursor, limit = _page_parameters(request)
    entries = list(await request.app[AUDIT_LOG_KEY].page(cursor, limit + 1))
    more = len(entries) > limit
    entries = entries[:limit]
    body = {
        "items": [entry_json(e) for e in entries],
        "next_cursor": entries[-1].entry_id if more and entries else None,
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_audit_routes(app: web.Application, log: AuditLog) -> None:
    """Mount ``GET /api/audit`` over ``log`` (the routes' ``record`` writes to it too)."""
    app[AUDIT_LOG_KEY] = log
    app.router.add_get("/api/audit", get_audit, allow_head=False)
