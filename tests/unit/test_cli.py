"""The console script's grammar."""

from __future__ import annotations

import subprocess
import sys

import pytest

from oms.cli import build_parser


def test_oms_help_when_run_then_lists_the_commands() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "oms.cli", "--help"], capture_output=True, text=True, check=True
    )

    for command in ("serve", "demo", "topics"):
        assert command in result.stdout


def test_parse_when_serve_has_host_and_port_then_takes_them() -> None:
    args = build_parser().parse_args(["serve", "--host", "0.0.0.0", "--port", "9090"])

    assert (args.command, args.host, args.port) == ("serve", "0.0.0.0", 9090)


def test_parse_when_the_command_is_unknown_then_refuses_it_with_exit_2() -> None:
    with pytest.raises(SystemExit) as refused:
        build_parser().parse_args(["trade-everything"])

    assert refused.value.code == 2
