"""FerretDB smoke test through beanie: init, insert, query, and a unique index that holds."""

from __future__ import annotations

from decimal import Decimal

import pytest
from beanie import Document, init_beanie
from pymongo import ASCENDING, AsyncMongoClient, IndexModel
from pymongo.errors import DuplicateKeyError

from oms.config import Settings


class SmokeOrder(Document):
    """A tiny order document: decimals stored as canonical strings (FerretDB has no Decimal128)."""

    order_id: str
    quantity: Decimal

    class Settings:
        name = "smoke_orders"
        indexes = [IndexModel([("order_id", ASCENDING)], unique=True)]
        bson_encoders = {Decimal: str}


async def test_beanie_when_inserting_and_querying_then_round_trips_and_refuses_a_duplicate_key(
    settings: Settings, unique: str
) -> None:
    # Arrange
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(settings.mongo_url)
    database = client[f"smoke_{unique}"]
    await init_beanie(database=database, document_models=[SmokeOrder])
    try:
        # Act
        await SmokeOrder(order_id="o-1", quantity=Decimal("0.12345678")).insert()
        found = await SmokeOrder.find_one(SmokeOrder.order_id == "o-1")
        raw = await database["smoke_orders"].find_one({"order_id": "o-1"})

        # Assert
        assert found is not None
        assert found.quantity == Decimal("0.12345678")
        assert raw is not None
        assert raw["quantity"] == "0.12345678"  # a lossless string, never a float
        with pytest.raises(DuplicateKeyError) as duplicate:
            await SmokeOrder(order_id="o-1", quantity=Decimal("1")).insert()
        assert duplicate.value.code == 11000  # MongoDB's duplicate key code, FerretDB's too
    finally:
        await client.drop_database(f"smoke_{unique}")
        await client.close()
