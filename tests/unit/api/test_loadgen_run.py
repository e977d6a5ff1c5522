"""``oms loadgen`` end to end on the in-process API (a real engine, in-memory stores): a healthy
run accounts for every order; a server that never answers is reported, not raised."""

from __future__ import annotations

import aiohttp
import pytest

from oms.config import Settings
from oms.load_target import Failure, Target, failure_of
from oms.loadgen import LoadError, run_loadgen
from tests.ports import free_port
from tests.unit.api.conftest import Api
from tests.unit.engine_helpers import tick


async def test_run_loadgen_when_the_server_stays_then_every_order_ends_and_the_run_is_ok(
    api: Api,
) -> None:
    # Arrange: a price for every instrument the load generator trades
    api.engine.on_tick(tick("ETH-USD", bid="2000.00", ask="2000.10"))
    api.engine.on_tick(tick("SOL-USD", bid="100.00", ask="100.01"))
    base = str(api.client.make_url("")).rstrip("/")

    # Act
    summary = await run_loadgen(api.engine.settings, 40, "rest", base=base, grace_s=0.5,
                                timeout_s=20, key=api.keys.token())  # fmt: skip

    # Assert
    assert summary.ok, summary.lines()
    assert (summary.sent, summary.placed, summary.unknown, summary.not_sent) == (40, 40, 0, 0)
    assert sum(summary.states.values()) == 40
    assert summary.unaccounted == 0
    assert "result: ok" in summary.lines()


async def test_run_loadgen_when_nothing_listens_then_load_error_not_a_traceback() -> None:
    with pytest.raises(LoadError, match="connect_refused") as failed:
        await run_loadgen(
            Settings(),
            10,
            "rest",
            base=f"http://127.0.0.1:{free_port()}",
            key="no-server-to-check-it",
        )

    assert failed.value.code == "LOADGEN_FAILED"


async def test_target_call_when_nothing_listens_then_a_counted_failure_and_gone_after_the_bound() -> (
    None
):
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as http:
        target = Target(http, f"http://127.0.0.1:{free_port()}", give_up_s=0.0)

        answer = await target.call("GET", "/health")

        assert answer == Failure("connect_refused", maybe_delivered=False)
        assert target.errors == {"connect_refused": 1}
        assert target.gone
        assert target.lost


@pytest.mark.parametrize(
    ("error", "kind", "maybe_delivered"),
    [
        (aiohttp.ServerDisconnectedError(), "disconnected", True),
        (TimeoutError(), "timeout", True),
        (aiohttp.ClientPayloadError("cut"), "connection_error", True),
    ],
)
def test_failure_of_when_the_request_went_out_then_its_outcome_is_unknown(
    error: BaseException, kind: str, maybe_delivered: bool
) -> None:
    assert failure_of(error) == Failure(kind, maybe_delivered)
