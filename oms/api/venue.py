"""``GET /api/venue/reconciliation`` (risk and admin): what reconciliation found.

The last run's report (when, why it ran, what it matched, booked, resolved, left pending and
could not explain, or the venue error that stopped it) and every discrepancy counted by kind
since the process started (``oms_reconcile_discrepancies_total{kind}`` on ``/metrics``).
"""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from oms.engine.reconciliation import ReconcileReport, Reconciliation

RECONCILIATION_KEY = web.AppKey("reconciliation", Reconciliation)


async def get_reconciliation(request: web.Request) -> web.Response:
    """The last report and the discrepancy counts (nothing yet: ``last`` is null)."""
    state = request.app.get(RECONCILIATION_KEY)
    reconciling = state is not None and state.reconciler is not None
    last = None if state is None else state.last()
    body = {
        "reconciling": reconciling,
        "last": None if last is None else report_json(last),
        "discrepancies_total": {} if state is None else dict(state.discrepancies.by_kind),
    }
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def report_json(report: ReconcileReport) -> dict[str, Any]:
    """A run's report as JSON."""
    return {
        "trigger": report.trigger,
        "at": report.at,
        "matched": report.matched,
        "booked": report.booked,
        "resolved": report.resolved,
        "pending": report.pending,
        "failed": report.failed,
        "discrepancies": [
            {
                "kind": d.kind.value,
                "account_id": d.account_id,
                "order_id": d.order_id,
                "detail": d.detail,
            }
            for d in report.discrepancies
        ],
    }


def add_venue_routes(app: web.Application, state: Reconciliation | None) -> None:
    """Mount the reconciliation report (``state`` None: nothing reconciles in this app)."""
    if state is not None:
        app[RECONCILIATION_KEY] = state
    app.router.add_get("/api/venue/reconciliation", get_reconciliation, allow_head=False)
