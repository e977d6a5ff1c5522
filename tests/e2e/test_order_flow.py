"""Orders through a real ``oms serve``: REST -> Kafka -> engine -> MongoDB, seen from outside."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import aiohttp
import orjson
from aiokafka import AIOKafkaConsumer, TopicPartition

from oms.stream.names import topic_names
from tests.e2e.conftest import Replica, last_price, open_account, order_until, produce_market_buy
from tests.malformed_orders import MALFORMED

TERMINAL = {"SETTLED", "CANCELLED", "REJECTED"}
FUNDS = {"USD": "1000000", "BTC": "10", "ETH": "100", "SOL": "1000"}


async def test_place_when_a_market_order_comes_over_rest_then_settles_seen_in_get_events_and_websocket(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    committed = (await _metrics(http, replica, until=("oms_ingest_commands_total", 0)))[
        "oms_ingest_commands_total"
    ]
    account = await open_account(http, replica.base, FUNDS)
    await last_price(http, replica.base, "BTC-USD")
    async with http.ws_connect(f"{replica.base}/ws/orders?account_id={account}") as ws:
        hello = orjson.loads((await ws.receive(timeout=10)).data)
        assert hello == {"type": "subscribed", "account_id": account}

        placed = await http.post(
            f"{replica.base}/api/orders",
            json={"account_id": account, "symbol": "BTC-USD", "side": "BUY",
                  "type": "MARKET", "quantity": "0.01"},
        )  # fmt: skip
        body = await placed.json()
        assert placed.status == 202
        assert body["status"] == "NEW"
        # read-your-writes: the order is there at once
        assert (await http.get(f"{replica.base}/api/orders/{body['order_id']}")).status == 200

        statuses: list[str] = []
        while not statuses or statuses[-1] not in TERMINAL:
            message = orjson.loads((await ws.receive(timeout=20)).data)
            assert message["order_id"] == body["order_id"]
            statuses.append(message["status"])

    assert statuses == ["NEW", "ACCEPTED", "FILLED", "SETTLED"]
    order = await order_until(http, replica, body["order_id"], {"SETTLED"})
    assert order["filled_quantity"] == "0.01"
    history = await (await http.get(f"{replica.base}/api/orders/{body['order_id']}/events")).json()
    assert [e["type"] for e in history["events"]] == [
        "OrderPlaced", "OrderAccepted", "OrderFilled", "OrderSettled",
    ]  # fmt: skip
    account_now = await (await http.get(f"{replica.base}/api/accounts/{account}")).json()
    assert account_now["balances"]["BTC"]["available"] == "10.01"
    assert Decimal(account_now["balances"]["USD"]["reserved"]) == 0
    # ... and the pipeline behind it shows in /metrics: written, published, then committed (the
    # account's opening, announced on orders, and the order: the order's commit follows the
    # acknowledgement of its events)
    figures = await _metrics(http, replica, until=("oms_ingest_commands_total", committed + 2))
    assert figures["oms_store_documents_written_total"] >= 1
    assert figures["oms_store_write_duration_seconds_count"] >= 1
    assert figures["oms_events_published_total"] >= 4


async def _metrics(
    http: aiohttp.ClientSession, replica: Replica, *, until: tuple[str, float]
) -> dict[str, float]:
    """The unlabelled ``oms_`` figures of /metrics, once ``until`` holds (the commit follows the
    events by a few milliseconds), or after 10 s."""
    name, least = until
    figures: dict[str, float] = {}
    for _ in range(100):
        text = await (await http.get(f"{replica.base}/metrics")).text()
        figures = {
            key: float(value)
            for key, value in (line.rsplit(" ", 1) for line in text.splitlines())
            if key.startswith("oms_") and "{" not in key
        }
        if figures.get(name, 0) >= least:
            break
        await asyncio.sleep(0.1)
    return figures


async def test_cancel_when_an_order_rests_then_cancelled_and_a_second_cancel_answers_409(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    last = await last_price(http, replica.base, "ETH-USD")
    far_below = (last * Decimal("0.95")).quantize(Decimal("0.01"))
    placed = await (
        await http.post(
            f"{replica.base}/api/orders",
            json={
                "account_id": account,
                "symbol": "ETH-USD",
                "side": "BUY",
                "type": "LIMIT",
                "quantity": "0.1",
                "price": str(far_below),
            },
        )
    ).json()
    await order_until(http, replica, placed["order_id"], {"ACCEPTED"})

    cancel = await http.delete(f"{replica.base}/api/orders/{placed['order_id']}")
    cancelled = await order_until(http, replica, placed["order_id"], {"CANCELLED"})
    again = await http.delete(f"{replica.base}/api/orders/{placed['order_id']}")

    assert cancel.status == 202
    assert cancelled["filled_quantity"] == "0"
    assert again.status == 409
    assert again.content_type == "application/problem+json"
    assert (await again.json(content_type=None))["code"] == "ORDER_NOT_CANCELLABLE"
    account_now = await (await http.get(f"{replica.base}/api/accounts/{account}")).json()
    assert Decimal(account_now["balances"]["USD"]["reserved"]) == 0


async def test_ingestion_when_an_order_is_produced_straight_onto_kafka_then_processed_like_a_rest_one(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    await last_price(http, replica.base, "SOL-USD")
    # No order_id: a client order id names the order, and the id is derived as REST does.
    order_id = await produce_market_buy(replica, account, "from-kafka-1")

    order = await order_until(http, replica, order_id, TERMINAL)

    assert order["status"] == "SETTLED"
    assert order["client_order_id"] == "from-kafka-1"


async def test_place_when_keys_repeat_then_same_order_other_body_422_and_20_duplicates_make_one(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    await last_price(http, replica.base, "BTC-USD")
    body = {"account_id": account, "symbol": "BTC-USD", "side": "BUY", "type": "MARKET",
            "quantity": "0.001"}  # fmt: skip
    url = f"{replica.base}/api/orders"

    first = await http.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    again = await http.post(url, json=body, headers={"Idempotency-Key": "k-1"})
    other = await http.post(
        url, json={**body, "quantity": "0.002"}, headers={"Idempotency-Key": "k-1"}
    )
    burst = await asyncio.gather(
        *(http.post(url, json=body, headers={"Idempotency-Key": "k-burst"}) for _ in range(20))
    )
    answers = [(response.status, await response.json(content_type=None)) for response in burst]
    burst_ids = {answer.get("order_id") for _status, answer in answers}

    assert first.status == again.status == 202
    assert (await first.json())["order_id"] == (await again.json())["order_id"]
    assert other.status == 422
    assert (await other.json(content_type=None))["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert {status for status, _answer in answers} == {202}, answers
    assert len(burst_ids) == 1, answers
    # A 202 means the order is on Kafka, not yet applied: list once both have ended.
    for order_id in ((await first.json())["order_id"], *burst_ids):
        await order_until(http, replica, order_id, TERMINAL)
    listing = await (await http.get(f"{url}?account_id={account}&limit=100")).json()
    assert len(listing["items"]) == 2  # k-1 and k-burst: nothing else was placed


async def _end_offsets(replica: Replica) -> dict[TopicPartition, int]:
    topic = topic_names(replica.settings).orders
    consumer = AIOKafkaConsumer(bootstrap_servers=replica.settings.kafka_bootstrap)
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        if not partitions:
            await consumer.topics()
            partitions = [
                TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()
            ]
        offsets: dict[TopicPartition, int] = await consumer.end_offsets(partitions)
        return offsets
    finally:
        await consumer.stop()


async def test_place_when_requests_are_malformed_then_problem_json_and_nothing_stored_or_produced(
    replica: Replica, http: aiohttp.ClientSession
) -> None:
    account = await open_account(http, replica.base, FUNDS)
    before = await _end_offsets(replica)

    answers = []
    for name, raw, status, _fields in MALFORMED:
        body = raw.replace(b'"acct-1"', f'"{account}"'.encode())
        response = await http.post(
            f"{replica.base}/api/orders", data=body, headers={"Content-Type": "application/json"}
        )
        code = (await response.json(content_type=None)).get("code")
        answers.append((name, response.status, response.content_type, code, status))
    oversized = await http.post(
        f"{replica.base}/api/orders", data=b"{" + b" " * (1024 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )  # fmt: skip

    assert len(answers) >= 25
    for name, got, content_type, code, expected in answers:
        assert (got, content_type) == (expected, "application/problem+json"), name
        assert code == ("MALFORMED_JSON" if expected == 400 else "VALIDATION_FAILED"), name
    assert oversized.status == 413
    assert oversized.content_type == "application/problem+json"
    assert (await oversized.json(content_type=None))["code"] == "BODY_TOO_LARGE"
    assert await _end_offsets(replica) == before
    listing = await (await http.get(f"{replica.base}/api/orders?account_id={account}")).json()
    assert listing["items"] == []
