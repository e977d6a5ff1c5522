"""The door's Redis client: which reply parser its connections use (a speed lever)."""

from __future__ import annotations

from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser

from oms.config import Settings
from oms.store.redis_store import redis_client


def test_client_when_settings_are_default_then_parses_replies_with_hiredis() -> None:
    client = redis_client(Settings())

    assert client.connection_pool.connection_kwargs["parser_class"] is _AsyncHiredisParser


def test_client_when_the_python_parser_is_asked_then_uses_redis_py_own() -> None:
    client = redis_client(Settings(redis_parser="python"))

    assert client.connection_pool.connection_kwargs["parser_class"] is _AsyncRESP2Parser
