"""pykka's private names the runtime relies on are still there and still behave the same.

Why oms touches pykka's insides at all: ``oms/actors/runtime/`` runs pykka actors on one
shared dispatcher thread instead of a thread each (a ``ThreadingActor`` per order tops out near
5,000 orders/s here and costs a thread per live order). To do that it implements pykka's
runtime hooks (``_create_actor_inbox``, ``_create_future``, ``_start_actor_loop``) and
replays pykka's actor loop one message at a time: ``_actor_loop_setup`` for ``on_start``,
``_handle_receive`` for pykka's own messages, ``_handle_failure`` for pykka's log-and-stop rule
on a failed tell, ``_stop`` when ``_ActorStop`` arrives (all in ``runtime/pykka_bridge.py``).
Its savings, measured and explained in the runtime's docstrings, need more: an ``Envelope`` only for an ask (a bare message for a tell,
recognised by ``type(item) is Envelope``), a stop told as pykka's own ``_ActorStop`` without
building a future, ``Actor.__init__`` skipped (no uuid4 and no ``threading.Event`` per actor),
and one object as both inbox and stopped flag. ``oms/actors/order.py`` and
``oms/actors/directory.py`` put ``Envelope``s into inboxes themselves to route an ask.

None of this is pykka's public API, so pyproject pins pykka exactly and these tests fail,
naming what moved, when an upgrade changes any of it: read pykka's changes for that name, adapt
the runtime, then move the pin.
"""

from __future__ import annotations

import ast
import importlib.metadata
import inspect
import logging
import re
import tomllib
from pathlib import Path
from types import TracebackType
from typing import Any, get_args

import pykka
import pytest
from pykka import ActorRef, ActorRegistry, ThreadingFuture
from pykka._actor import ActorInbox
from pykka._envelope import Envelope
from pykka._types import OptExcInfo
from pykka.messages import ProxyCall, _ActorStop

ROOT = Path(__file__).resolve().parents[3]
PYPROJECT = ROOT / "pyproject.toml"

# Every private pykka name oms imports, each checked by a test below.
CHECKED_PRIVATE_IMPORTS = {
    ("pykka._envelope", "Envelope"),
    ("pykka.messages", "_ActorStop"),
    ("pykka._types", "OptExcInfo"),
    ("pykka._actor", "ActorInbox"),
}


class RecordingInbox:
    """An inbox that keeps what is put into it (pykka's ``ActorInbox`` protocol)."""

    def __init__(self) -> None:
        self.items: list[Any] = []

    def put(self, envelope: Envelope[Any], /) -> None:
        self.items.append(envelope)

    def get(self) -> Envelope[Any]:
        return self.items.pop(0)  # type: ignore[no-any-return]

    def empty(self) -> bool:
        return not self.items


class Probe(pykka.Actor):
    """A pykka actor on no runtime at all: its inbox records, its loop never runs."""

    def __init__(self) -> None:
        super().__init__()
        self.stopped_by: list[str] = []
        self.received: list[Any] = []
        self.start_fails = False

    @staticmethod
    def _create_actor_inbox() -> ActorInbox:
        return RecordingInbox()

    @staticmethod
    def _create_future() -> pykka.Future[Any]:
        return ThreadingFuture()

    def _start_actor_loop(self) -> None:
        pass

    def _stop(self) -> None:
        self.stopped_by.append("_stop")
        super()._stop()

    def on_start(self) -> None:
        if self.start_fails:
            raise RuntimeError("on_start failed")

    def on_receive(self, message: Any) -> Any:
        self.received.append(message)
        return "received"

    def echo(self, value: str) -> str:
        return value


def _pin() -> str:
    dependencies = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    (spec,) = [dependency for dependency in dependencies if re.match(r"pykka\b", dependency)]
    return str(spec)


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def _recorded(ref: ActorRef[Any]) -> list[Any]:
    inbox = ref.actor_inbox
    assert isinstance(inbox, RecordingInbox)
    return inbox.items


def test_pin_when_read_from_pyproject_then_is_exact_and_is_the_installed_version() -> None:
    spec = _pin()

    assert spec.startswith("pykka=="), f"pykka must be pinned exactly, not {spec!r}"
    assert importlib.metadata.version("pykka") == spec.removeprefix("pykka=="), (
        "the installed pykka is not the pinned one: run this file against the pinned version"
    )


def _private_pykka_imports() -> dict[tuple[str, str], list[str]]:
    """Every ``from pykka... import name`` in oms whose module or name is private, and where."""
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted((ROOT / "oms").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or not (node.module or "").startswith("pykka"):
                continue
            module = node.module or ""
            for alias in node.names:
                if "._" in module or alias.name.startswith("_"):
                    where = str(path.relative_to(ROOT))
                    found.setdefault((module, alias.name), []).append(where)
    return found


def test_private_imports_when_oms_is_scanned_then_each_is_one_these_tests_check() -> None:
    found = _private_pykka_imports()

    unchecked = {
        name: where for name, where in found.items() if name not in CHECKED_PRIVATE_IMPORTS
    }
    assert not unchecked, f"pykka private names used but not checked here: {unchecked}"
    assert found, "no private pykka name is used any more: drop the exact pin and this file"


def test_envelope_when_built_then_has_message_and_reply_to_in_two_slots() -> None:
    future: ThreadingFuture[Any] = ThreadingFuture()

    told = Envelope("tell")
    asked = Envelope("ask", reply_to=future)

    assert Envelope.__slots__ == ["message", "reply_to"]
    assert _parameters(Envelope.__init__) == ["self", "message", "reply_to"]
    assert (told.message, told.reply_to) == ("tell", None)
    assert (asked.message, asked.reply_to) == ("ask", future)


def test_tell_when_sent_through_a_ref_then_queues_exactly_an_envelope_without_reply() -> None:
    ref = Probe().actor_ref

    ref.tell("hello")

    (item,) = _recorded(ref)
    assert type(item) is Envelope
    assert (item.message, item.reply_to) == ("hello", None)


def test_ask_when_sent_through_a_ref_then_queues_an_envelope_replying_to_its_future() -> None:
    ref = Probe().actor_ref

    future = ref.ask("question", block=False)

    (item,) = _recorded(ref)
    assert type(item) is Envelope
    assert item.message == "question"
    assert item.reply_to is future
    assert isinstance(future, ThreadingFuture)


def test_actor_stop_when_built_then_is_an_empty_named_tuple_equal_to_any_other() -> None:
    stop = _ActorStop()

    assert isinstance(stop, tuple)
    assert _ActorStop._fields == ()
    assert stop == _ActorStop()
    assert _parameters(_ActorStop) == []


def test_stop_when_asked_through_a_ref_then_queues_actor_stop_in_an_envelope() -> None:
    ref = Probe().actor_ref

    ref.stop(block=False)

    (item,) = _recorded(ref)
    assert type(item) is Envelope
    assert type(item.message) is _ActorStop
    assert item.reply_to is not None


def test_handle_receive_when_given_actor_stop_then_calls_stop() -> None:
    probe = Probe()

    probe._handle_receive(_ActorStop())

    assert probe.stopped_by == ["_stop"]
    assert probe.actor_stopped.is_set()
    assert probe.received == []


def test_handle_receive_when_given_proxy_call_or_own_message_then_routes_them() -> None:
    probe = Probe()

    called = probe._handle_receive(ProxyCall(attr_path=("echo",), args=("hi",), kwargs={}))
    received = probe._handle_receive("plain")

    assert _parameters(pykka.Actor._handle_receive) == ["self", "message"]
    assert (called, received) == ("hi", "received")
    assert probe.received == ["plain"]


def test_handle_failure_when_called_then_logs_on_pykka_unregisters_and_sets_stopped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = Probe()
    ActorRegistry.register(probe.actor_ref)
    error = ValueError("boom")
    exc_info = (ValueError, error, None)

    with caplog.at_level(logging.ERROR, logger="pykka"):
        probe._handle_failure(*exc_info)

    assert _parameters(pykka.Actor._handle_failure) == [
        "self",
        "exception_type",
        "exception_value",
        "traceback",
    ]
    assert probe.actor_stopped.is_set()
    assert ActorRegistry.get_by_urn(probe.actor_urn) is None
    (record,) = [r for r in caplog.records if r.name == "pykka"]
    assert record.levelno == logging.ERROR
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_actor_loop_setup_when_on_start_fails_then_handles_it_as_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    probe = Probe()
    probe.start_fails = True

    with caplog.at_level(logging.ERROR, logger="pykka"):
        probe._actor_loop_setup()

    assert _parameters(pykka.Actor._actor_loop_setup) == ["self"]
    assert probe.actor_stopped.is_set()
    assert any(r.name == "pykka" and r.levelno == logging.ERROR for r in caplog.records)


def test_actor_when_subclassed_for_a_runtime_then_three_hooks_are_abstract() -> None:
    hooks = pykka.Actor.__abstractmethods__

    assert hooks == frozenset({"_create_actor_inbox", "_create_future", "_start_actor_loop"})
    assert _parameters(pykka.Actor._stop) == ["self"]
    assert {"put", "get", "empty"} <= set(dir(ActorInbox))


def test_actor_init_when_run_then_sets_only_the_fields_the_runtime_sets_itself() -> None:
    actor = object.__new__(Probe)

    pykka.Actor.__init__(actor)

    # DispatchedActor.__init__ sets these four itself instead of calling pykka's __init__.
    assert set(vars(actor)) == {"actor_urn", "actor_inbox", "actor_stopped", "_actor_ref"}
    assert actor.actor_ref is vars(actor)["_actor_ref"]


def test_actor_ref_when_built_then_shares_the_actors_inbox_and_stopped_flag() -> None:
    probe = Probe()

    ref = ActorRef(probe)
    probe.actor_stopped.set()

    assert ref.actor_inbox is probe.actor_inbox
    assert ref.actor_stopped is probe.actor_stopped
    assert ref.actor_urn == probe.actor_urn
    assert not ref.is_alive()


def test_future_when_no_get_hook_then_get_raises_not_implemented_for_the_runtime() -> None:
    future: pykka.Future[Any] = pykka.Future()

    assert future._get_hook is None
    with pytest.raises(NotImplementedError):
        future.get(timeout=0)

    future.set_get_hook(lambda timeout: "lazy")
    assert future._get_hook is not None
    assert future.get() == "lazy"


def test_types_when_imported_then_opt_exc_info_is_exc_info_shaped() -> None:
    shape = get_args(OptExcInfo)

    assert shape == (type[BaseException] | None, BaseException | None, TracebackType | None)
