"""The door's Redis client: which reply parser and command packer its connections use (a speed
lever), and that hiredis's packer puts the bytes redis-py's own would on the wire."""

from __future__ import annotations

import pytest
from redis._parsers import _AsyncHiredisParser, _AsyncRESP2Parser
from redis.asyncio.connection import Connection
from redis.exceptions import DataError

from oms.config import Settings
from oms.store.redis_store import HiredisPackingConnection, redis_client


def test_client_when_settings_are_default_then_parses_replies_with_hiredis() -> None:
    client = redis_client(Settings())

    assert client.connection_pool.connection_kwargs["parser_class"] is _AsyncHiredisParser


def test_client_when_the_python_parser_is_asked_then_uses_redis_py_own() -> None:
    client = redis_client(Settings(redis_parser="python"))

    assert client.connection_pool.connection_kwargs["parser_class"] is _AsyncRESP2Parser


def test_client_when_settings_are_default_then_packs_commands_with_hiredis() -> None:
    client = redis_client(Settings())

    assert client.connection_pool.connection_class is HiredisPackingConnection


def test_client_when_the_python_parser_is_asked_then_packs_with_redis_py_own() -> None:
    client = redis_client(Settings(redis_parser="python"))

    assert client.connection_pool.connection_class is Connection


_SCRIPT_CALL = (
    "EVALSHA",
    "a" * 40,
    2,
    "rate:alice",
    "idempotency:alice:k1",
    b'{"order_id":"5F5X9ABJRH370XB6NVYJ0HGB4X"}',
    86_400,
    1_733_500_000.125,
    -3,
    "é",
)


def test_pack_when_a_script_call_is_packed_then_the_bytes_are_redis_py_own() -> None:
    hiredis_packed = HiredisPackingConnection().pack_command(*_SCRIPT_CALL)
    python_packed = Connection().pack_command(*_SCRIPT_CALL)

    assert b"".join(hiredis_packed) == b"".join(python_packed)


def test_pack_when_the_command_name_has_a_space_then_it_is_split_as_redis_py_splits_it() -> None:
    packed = HiredisPackingConnection().pack_command("SCRIPT LOAD", "return 1")

    assert b"".join(packed) == b"".join(Connection().pack_command("SCRIPT LOAD", "return 1"))
    assert b"".join(packed).startswith(b"*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD\r\n")


def test_pack_when_a_value_is_a_memoryview_then_redis_py_packs_it() -> None:
    packed = HiredisPackingConnection().pack_command("SET", "k", memoryview(b"value"))

    assert b"".join(packed) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n"


def test_pack_when_a_value_has_no_redis_encoding_then_data_error() -> None:
    with pytest.raises(DataError):
        HiredisPackingConnection().pack_command("SET", "k", True)
