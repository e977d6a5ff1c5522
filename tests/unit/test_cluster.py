"""``oms cluster up``: the replicas it plans and the grammar that asks for them."""

from __future__ import annotations

import pytest

from oms.cli import build_parser
from oms.cluster import plan
from oms.config import Settings


def test_plan_when_three_replicas_then_each_has_its_own_port_and_name_and_one_feed() -> None:
    # Arrange
    settings = Settings(replica="")

    # Act
    planned = plan(settings, 3, 9000)

    # Assert
    assert [(r.name, r.port) for r in planned] == [
        ("oms-0", 9000),
        ("oms-1", 9001),
        ("oms-2", 9002),
    ]
    assert [r.env["OMS_HTTP_PORT"] for r in planned] == ["9000", "9001", "9002"]
    assert [r.env["OMS_REPLICA"] for r in planned] == ["oms-0", "oms-1", "oms-2"]
    assert (
        "OMS_SIMULATED_FEED" not in planned[0].env
        or planned[0].env["OMS_SIMULATED_FEED"] != "false"
    )
    assert [r.env.get("OMS_SIMULATED_FEED") for r in planned[1:]] == ["false", "false"]


def test_plan_when_no_replica_then_refuses() -> None:
    with pytest.raises(ValueError, match="at least one"):
        plan(Settings(), 0, 9000)


def test_parse_when_cluster_up_with_replicas_then_takes_them() -> None:
    args = build_parser().parse_args(["cluster", "up", "--replicas", "2", "--base-port", "9100"])

    assert (args.command, args.cluster_command, args.replicas, args.base_port) == (
        "cluster",
        "up",
        2,
        9100,
    )
