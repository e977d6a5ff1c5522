"""The ``oms`` command: ``oms serve``, ``oms demo``, ``oms topics``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from dataclasses import replace

from oms import __version__
from oms.config import Settings, SettingsError


def _serve(settings: Settings) -> int:
    from oms.logs import configure  # noqa: PLC0415  (keep `oms --help` fast)
    from oms.service import serve  # noqa: PLC0415

    configure(settings)
    return asyncio.run(serve(settings))


def _topics(settings: Settings) -> int:
    from oms.stream.topics import ensure_topics, topic_specs  # noqa: PLC0415

    created = asyncio.run(ensure_topics(settings))
    for spec in topic_specs(settings):
        mark = "created" if spec.name in created else "exists"
        print(f"{spec.name:<16} partitions={spec.partitions:<3} key={spec.key:<11} {mark}")
    return 0


def _demo(settings: Settings) -> int:
    from oms.demo import run_demo  # noqa: PLC0415

    return asyncio.run(run_demo(settings))


def _loadgen(settings: Settings, args: argparse.Namespace) -> int:
    """Run the load; 0 only when the server stayed and every order is accounted for."""
    from oms.loadgen import LoadError, run_loadgen  # noqa: PLC0415

    bounds = {  # the ones given; run_loadgen has the defaults
        name: value
        for name, value in (
            ("give_up_s", args.give_up_after),
            ("cleanup_wait_s", args.cleanup_wait),
            ("request_timeout_s", args.request_timeout),
        )
        if value is not None
    }
    try:
        summary = asyncio.run(
            run_loadgen(settings, args.orders, args.via, accounts=args.accounts, **bounds)
        )
    except LoadError as exc:
        print(f"oms loadgen: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line, flush=True)
    if not summary.ok:
        print("oms loadgen: the run did not end cleanly (see result above)", file=sys.stderr)
    return 0 if summary.ok else 1


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="oms",
        description="oms: an actor-model order management system for crypto spot trading.",
    )
    parser.add_argument("--version", action="version", version=f"oms {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the OMS: HTTP API, Kafka agents, engine")
    serve.add_argument("--host", help="address to listen on (default: settings, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: settings, 8080)")
    commands.add_parser("demo", help="start oms serve and drive a short demo through it")
    loadgen = commands.add_parser("loadgen", help="place N orders on a running oms serve")
    loadgen.add_argument("--orders", type=int, default=1000, help="how many (default 1000)")
    loadgen.add_argument("--via", choices=["rest", "kafka"], default="rest")
    loadgen.add_argument("--accounts", type=int, default=4, help="accounts to spread over")
    loadgen.add_argument(
        "--give-up-after", type=float, metavar="S",
        help="stop once the server has answered nothing for S seconds (default 15)",
    )  # fmt: skip
    loadgen.add_argument(
        "--cleanup-wait", type=float, metavar="S",
        help="then wait up to S seconds for it to return, to cancel what rests (default 15)",
    )  # fmt: skip
    loadgen.add_argument(
        "--request-timeout", type=float, metavar="S",
        help="the most any one request may take (default 10)",
    )  # fmt: skip
    commands.add_parser("topics", help="create the Kafka topics that are missing and list them")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script."""
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"oms: {exc}", file=sys.stderr)
        return 2
    if args.command == "serve":
        if args.host:
            settings = replace(settings, http_host=args.host)
        if args.port:
            settings = replace(settings, http_port=args.port)
        return _serve(settings)
    if args.command == "topics":
        return _topics(settings)
    if args.command == "loadgen":
        return _loadgen(settings, args)
    return _demo(settings)


if __name__ == "__main__":
    sys.exit(main())
