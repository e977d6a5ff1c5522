"""The ``oms`` command: ``oms serve``, ``oms cluster up``, ``oms demo``, ``oms loadgen``,
``oms topics``, ``oms keys``."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from oms import __version__
from oms.config import Settings, SettingsError


def _serve(settings: Settings) -> int:
    from oms.logs import configure  # noqa: PLC0415  (keep `oms --help` fast)
    from oms.process_levers import set_process_levers  # noqa: PLC0415
    from oms.service import serve  # noqa: PLC0415

    configure(settings)
    set_process_levers(settings)  # the loop asyncio.run makes is the chosen one
    return asyncio.run(serve(settings))


def _door(settings: Settings) -> int:
    from oms.doors.process import run_door  # noqa: PLC0415
    from oms.logs import configure  # noqa: PLC0415
    from oms.process_levers import set_process_levers  # noqa: PLC0415

    configure(settings)
    set_process_levers(settings)
    return asyncio.run(run_door(settings))


def _cluster(settings: Settings, args: argparse.Namespace) -> int:
    from oms.cluster import run_cluster  # noqa: PLC0415

    return asyncio.run(run_cluster(settings, args.replicas, args.base_port))


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
            run_loadgen(
                settings, args.orders, args.via, accounts=args.accounts, key=args.key, **bounds
            )
        )
    except LoadError as exc:
        print(f"oms loadgen: {exc}", file=sys.stderr)
        return 1
    for line in summary.lines():
        print(line, flush=True)
    if not summary.ok:
        print("oms loadgen: the run did not end cleanly (see result above)", file=sys.stderr)
    return 0 if summary.ok else 1


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    """``oms keys create|list|revoke``: straight on MongoDB, no server needed."""
    from pymongo.errors import PyMongoError  # noqa: PLC0415

    from oms.domain.access import Role  # noqa: PLC0415
    from oms.domain.accounts import InvalidAccountId  # noqa: PLC0415
    from oms.store.api_keys import create_key, list_keys, revoke_key  # noqa: PLC0415

    try:
        if args.keys_command == "create":
            issued = create_key(settings, Role(args.role), frozenset(args.account), args.name)
            print(f"key_id: {issued.key_id}")
            print(f"key: {issued.key}")
            print("(the key is shown this once: only its digest is stored)", file=sys.stderr)
            return 0
        if args.keys_command == "list":
            for key in list_keys(settings):
                state = "active" if key.revoked_at is None else "revoked"
                accounts = ",".join(sorted(key.accounts)) or "-"
                print(f"{key.key_id}  {key.role.value:<6}  {state:<7}  accounts={accounts}  "
                      f"created={_iso(key.created_at)}  name={key.name!r}")  # fmt: skip
            return 0
        revoked = revoke_key(settings, args.key_id)
    except InvalidAccountId as exc:
        print(f"oms keys: {exc}", file=sys.stderr)
        return 2
    except PyMongoError as exc:
        print(f"oms keys: MongoDB at {settings.mongo_url} failed: {exc}", file=sys.stderr)
        return 1
    if not revoked:
        print(f"oms keys: no active key {args.key_id}", file=sys.stderr)
        return 1
    print(f"revoked {args.key_id} (every replica refuses it within "
          f"{settings.api_key_cache_ttl_s:g} s)")  # fmt: skip
    return 0


def _iso(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="seconds")


def _add_keys_parser(commands: Any) -> None:
    keys = commands.add_parser("keys", help="create, list or revoke API keys (in MongoDB)")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="make a key; prints key_id: and key: once")
    create.add_argument("--role", required=True, choices=["admin", "risk", "trader", "viewer"])
    create.add_argument(
        "--account", action="append", default=[], metavar="ID",
        help="an account the key may act for (repeat for several; viewer and trader keys)",
    )  # fmt: skip
    create.add_argument("--name", default="", help="who or what holds it")
    actions.add_parser("list", help="every key, never its secret")
    revoke = actions.add_parser("revoke", help="stop a key working (within the cache TTL)")
    revoke.add_argument("key_id")


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
    commands.add_parser("door", help="one HTTP door process (oms serve starts them itself)")
    cluster = commands.add_parser("cluster", help="run K local replicas of oms serve")
    cluster_actions = cluster.add_subparsers(
        dest="cluster_command", required=True, metavar="ACTION"
    )
    up = cluster_actions.add_parser(
        "up", help="start K replicas in one consumer group, each on its own port, until Ctrl-C"
    )
    up.add_argument("--replicas", type=int, default=3, help="how many (default 3)")
    up.add_argument(
        "--base-port", type=int, default=8080, help="the first one's port; the next ones follow"
    )
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
    loadgen.add_argument(
        "--key", help="the API key to send (default: make an admin key in MongoDB)"
    )
    commands.add_parser("topics", help="create the Kafka topics that are missing and list them")
    _add_keys_parser(commands)
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
            settings = settings.replace(http_host=args.host)
        if args.port:
            settings = settings.replace(http_port=args.port)
        return _serve(settings)
    if args.command == "topics":
        return _topics(settings)
    if args.command == "demo":
        return _demo(settings)
    if args.command == "door":
        return _door(settings)
    return _WITH_ARGS[args.command](settings, args)


# The commands that read their own arguments.
_WITH_ARGS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "cluster": _cluster,
    "loadgen": _loadgen,
    "keys": _keys,
}


if __name__ == "__main__":
    sys.exit(main())
