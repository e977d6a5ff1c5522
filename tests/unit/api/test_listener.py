"""The listener's bounds, against the real aiohttp server in-process over raw sockets: a head or
body that does not arrive in time is cut off, connections beyond the cap are answered 503."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import orjson
import pytest

from oms.api.app import build_app
from oms.api.listener import CappedSite, start_listener
from oms.domain.access import Role
from oms.engine import Engine
from oms.store.api_keys import mint_key
from oms.store.memory import MemoryAccountRepository, MemoryIdempotencyStore, MemoryOrderCache
from oms.store.memory_audit import MemoryAuditLog
from oms.stream.engine_bus import EngineCommandBus, KeptRiskEvents
from tests.credentials import MemoryKeys
from tests.malformed_orders import GOOD
from tests.unit.engine_helpers import make_engine, tick

HEADER_S = 0.6
BODY_S = 0.6
MARGIN_S = 1.0  # the loop's turn, the timer's resolution, a busy two-core machine


async def _ready() -> dict[str, bool]:
    return {"kafka": True, "mongodb": True, "redis": True}


@pytest.fixture
async def listener(request: pytest.FixtureRequest) -> AsyncIterator[CappedSite]:
    """A whole app (a real engine, in-memory stores) behind the real listener on a free port."""
    header_s, cap = getattr(request, "param", (HEADER_S, 64))
    engine = make_engine()
    engine.on_tick(tick())
    engine.wait_idle()
    settings = engine.settings.replace(
        http_port=0,
        http_header_timeout_s=header_s,
        http_body_timeout_s=BODY_S,
        http_max_connections=cap,
    )
    keys = MemoryKeys(settings)
    keys.directory.add(ADMIN.record)
    facade = Engine(engine)  # what the API holds: the engine's async use cases
    app = build_app(
        settings,
        facade,
        EngineCommandBus(facade),
        MemoryIdempotencyStore(),
        MemoryOrderCache(),
        partitions_assigned=lambda: True,
        ready_probe=_ready,
        accounts=MemoryAccountRepository(),
        risk_events=KeptRiskEvents(),
        authenticator=keys.authenticator,
        audit_log=MemoryAuditLog(),
    )
    runner, site = await start_listener(app, settings)
    try:
        yield site
    finally:
        await runner.cleanup()
        engine.stop()


async def _connect(site: CappedSite) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", site.port)


async def _closed_after(reader: asyncio.StreamReader, within: float) -> tuple[bytes, float]:
    """Everything the server sends until it closes, and when it closed (seconds from now)."""
    started = time.monotonic()
    received = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := await asyncio.wait_for(reader.read(65536), within):
            received += chunk
    return received, time.monotonic() - started


ADMIN = mint_key(Role.ADMIN, frozenset(), "listener tests", 0.0)  # raw requests send its token


def _order_request(body: bytes, *, length: int | None = None) -> bytes:
    return (
        b"POST /api/orders HTTP/1.1\r\nHost: oms\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + ADMIN.key.encode() + b"\r\n"
        b"Content-Length: " + str(len(body) if length is None else length).encode() + b"\r\n\r\n"
    ) + body


async def test_a_client_when_it_sends_half_a_request_line_then_is_closed_at_the_header_bound(
    listener: CappedSite,
) -> None:
    # Arrange
    reader, writer = await _connect(listener)

    # Act
    writer.write(b"POST /api/ord")
    await writer.drain()
    received, after = await _closed_after(reader, HEADER_S + MARGIN_S)

    # Assert: closed, answering nothing, at the bound (not before it)
    writer.close()
    assert received == b""
    assert HEADER_S * 0.8 <= after <= HEADER_S + MARGIN_S


async def test_a_client_when_it_trickles_its_headers_then_is_closed_at_the_header_bound(
    listener: CappedSite,
) -> None:
    # Arrange
    reader, writer = await _connect(listener)
    started = time.monotonic()

    # Act: a byte every 50 ms, never finishing the head; bytes arriving do not extend it
    async def trickle() -> None:
        with contextlib.suppress(ConnectionError):
            for byte in b"GET /health HTTP/1.1\r\nHost: oms\r\nX-Slow: " + b"a" * 200:
                writer.write(bytes([byte]))
                await writer.drain()
                await asyncio.sleep(0.05)

    sending = asyncio.create_task(trickle())
    received, _ = await _closed_after(reader, HEADER_S + MARGIN_S)
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)

    # Assert
    writer.close()
    assert received == b""
    assert time.monotonic() - started <= HEADER_S + MARGIN_S


async def test_a_client_when_its_body_stops_short_then_408_and_closed_at_the_body_bound(
    listener: CappedSite,
) -> None:
    # Arrange
    reader, writer = await _connect(listener)

    # Act: headers announcing 100 bytes, then 10 of them
    writer.write(_order_request(b'{"account_', length=100))
    await writer.drain()
    started = time.monotonic()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BODY_S + MARGIN_S)
    answered = time.monotonic() - started
    rest, _ = await _closed_after(reader, MARGIN_S + 2.5)  # then closed (after the linger)

    # Assert
    writer.close()
    assert head.startswith(b"HTTP/1.1 408 ")
    assert b"application/problem+json" in head
    assert orjson.loads(rest)["code"] == "REQUEST_TIMEOUT"
    assert BODY_S * 0.8 <= answered <= BODY_S + MARGIN_S


async def test_a_client_when_its_request_is_whole_then_is_answered_as_before(
    listener: CappedSite,
) -> None:
    # Arrange
    reader, writer = await _connect(listener)

    # Act
    writer.write(_order_request(orjson.dumps({**GOOD, "account_id": "a1", "price": "99.00"})))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)

    # Assert
    writer.close()
    assert head.startswith(b"HTTP/1.1 202 ")


@pytest.mark.parametrize("listener", [(30.0, 3)], indirect=True)
async def test_connections_when_over_the_cap_then_answered_503_and_closed_until_one_leaves(
    listener: CappedSite,
) -> None:
    # Arrange: three clients hold a connection each (one request answered, kept alive)
    held = []
    for _ in range(3):
        reader, writer = await _connect(listener)
        writer.write(b"GET /health HTTP/1.1\r\nHost: oms\r\n\r\n")
        await writer.drain()
        assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 ")
        held.append((reader, writer))

    # Act: a fourth
    reader, writer = await _connect(listener)
    refused, _ = await _closed_after(reader, 5)
    writer.close()

    # Assert: refused with a problem, then served once a held connection goes
    assert refused.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: 1" in refused
    assert orjson.loads(refused.split(b"\r\n\r\n", 1)[1])["code"] == "TOO_MANY_CONNECTIONS"
    assert listener.refused == 1
    held.pop()[1].close()
    await asyncio.sleep(0.2)
    reader, writer = await _connect(listener)
    writer.write(b"GET /health HTTP/1.1\r\nHost: oms\r\nConnection: close\r\n\r\n")
    served, _ = await _closed_after(reader, 5)
    writer.close()
    assert served.startswith(b"HTTP/1.1 200 ")
    for _, other in held:
        other.close()
