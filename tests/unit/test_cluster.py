"""``oms cluster up``: the replicas it plans and the grammar that asks for them."""

from __future__ import annotations

import pytest

from oms.cli import build_parser
from oms.cluster import plan
from oms.config import Settings


def test_plan_when_three_replicas_then_each_has_its_own_port_and_name_and_one_token() -> None:
    # Arrange
    settings = Settings(replica="", internal_token="")

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
    tokens = {r.env["OMS_INTERNAL_TOKEN"] for r in planned}
    assert len(tokens) == 1  # one shared secret, made when none was given
    assert all(tokens)


def test_plan_when_a_token_is_given_then_every_replica_shares_it() -> None:
    planned = plan(Settings(internal_token="s3cret"), 2, 9000)

    assert [r.env["OMS_INTERNAL_TOKEN"] for r in planned] == ["s3cret", "s3cret"]


def test_plan_when_replicas_run_doors_then_no_two_processes_share_a_port() -> None:
    # Arrange: 3 replicas, 2 doors each (OMS_HTTP_WORKERS)
    settings = Settings(http_workers=2)

    # Act
    planned = plan(settings, 3, 9000)
    ports = []
    for replica in planned:
        mine = Settings.from_env(replica.env)
        ports += [mine.http_port, mine.engine_port()]
        ports += [mine.door_metrics_port_of(i) for i in range(2)]

    # Assert
    assert len(ports) == len(set(ports)) == 12


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
