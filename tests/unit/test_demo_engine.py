"""The engine part of the demo runs to its end and conserves every asset."""

from __future__ import annotations

import pytest

from oms.config import Settings
from oms.demo_engine import run_engine_demo


def test_engine_demo_when_run_then_every_asset_is_conserved(
    capsys: pytest.CaptureFixture[str],
) -> None:
    conserved = run_engine_demo(Settings(), count=300)

    printed = capsys.readouterr().out
    assert conserved is True
    assert "300 orders" in printed
    assert "conserved: True" in printed
