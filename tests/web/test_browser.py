"""The web app in a real browser: Playwright drives Debian's chromium against a real ``oms serve``.

This module starts the replica on the local servers (its own topics, group and database, as
the e2e suite does), opens the account, makes a trader and a risk key for it (``oms keys
create``'s own function), then runs ``web/e2e/trading.spec.ts`` with ``npx playwright test``. The story's screenshots land in ``web/test-results/screens/`` (ignored
by git); ``make web-screenshot`` copies the README's from there.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from oms.domain.access import Role
from oms.store.api_keys import create_key
from tests.e2e.conftest import (
    Replica,
    drop_database,
    require_servers,
    run_overrides,
    start_replica,
    stop_replica,
)

pytestmark = pytest.mark.e2e

WEB = Path(__file__).resolve().parents[2] / "web"
CHROMIUM = Path("/usr/bin/chromium")
PLAYWRIGHT_TIMEOUT_S = 150


def _require_built() -> None:
    missing = [
        what
        for what, path in (
            ("npm ci", WEB / "node_modules" / ".bin" / "playwright"),
            ("vite build", WEB / "dist" / "index.html"),
            ("chromium (apt-get install chromium)", CHROMIUM),
        )
        if not path.exists()
    ]
    if missing:
        pytest.fail(f"the web app is not set up ({', '.join(missing)} missing): run `make setup`")


def _open_account(base: str, admin_key: str, account_id: str) -> None:
    body = json.dumps({"account_id": account_id, "balances": {"USD": "100000", "BTC": "2"}})
    request = urllib.request.Request(
        f"{base}/api/accounts",
        data=body.encode(),
        method="POST",
        headers={"Authorization": f"Bearer {admin_key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 201


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replica]:
    """One ``oms serve`` serving web/dist."""
    _require_built()
    require_servers()
    overrides = run_overrides(uuid.uuid4().hex[:8])
    started = start_replica(overrides, tmp_path_factory.mktemp("serve") / "serve.log")
    try:
        yield started
    finally:
        stop_replica(started)
        drop_database(started.settings)


def test_trading_story_when_driven_in_chromium_then_every_step_holds(
    replica: Replica,
) -> None:
    # Arrange: an account, a trader key for it and a risk key
    served = replica
    account_id = f"web-{uuid.uuid4().hex[:8]}"
    admin_key = create_key(served.settings, Role.ADMIN, name="web-admin").key
    _open_account(served.base, admin_key, account_id)
    mine = frozenset({account_id})
    trader_key = create_key(served.settings, Role.TRADER, mine, name="web-trader").key
    risk_key = create_key(served.settings, Role.RISK, mine, name="web-risk").key
    shutil.rmtree(WEB / "test-results" / "screens", ignore_errors=True)

    # Act: the Playwright story (log in, limit, cancel, market, invalid quantity, reload, halt)
    done = subprocess.run(
        [str(WEB / "node_modules" / ".bin" / "playwright"), "test"],
        cwd=WEB,
        env={
            **os.environ,
            "OMS_WEB_BASE": served.base,
            "OMS_WEB_ACCOUNT": account_id,
            "OMS_WEB_TRADER_KEY": trader_key,
            "OMS_WEB_RISK_KEY": risk_key,
            "OMS_WEB_CHROMIUM": str(CHROMIUM),
            "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD": "1",
            "CI": "1",
        },
        capture_output=True,
        text=True,
        timeout=PLAYWRIGHT_TIMEOUT_S,
        check=False,
    )

    # Assert: the story passed, and left a screenshot of each step
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
    screens = sorted(p.name for p in (WEB / "test-results" / "screens").glob("*.png"))
    assert screens == [
        "01-login.png",
        "02-desk.png",
        "03-limit-accepted.png",
        "04-cancelled.png",
        "05-market-settled.png",
        "06-invalid-quantity.png",
        "07-reloaded.png",
        "08-halted-by-risk.png",
        "09-refused-when-halted.png",
        "web-app.png",
    ]
