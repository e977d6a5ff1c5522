"""The MongoDB documents (beanie) and how an order becomes one.

Every collection is append-only: documents are inserted, never updated or deleted. The reasons
were measured on this machine against FerretDB 1.24 on SQLite (the local and CI server):

- ``update_one``/``delete_one`` by ``_id`` on a 20k-document collection took ~135 ms each. Only
  an ``_id`` equality filter is pushed down to SQLite, and even that scans (~3 ms for a document
  near the start of a 20k collection, ~180 ms near its end); any other filter, indexed or not,
  is evaluated document by document in FerretDB (~7 s for 40k documents). So the store never
  reads MongoDB on the hot path: what the engine needs is in memory (``oms.store.batcher``), and
  a read that misses memory asks by ``_id`` only.
- ``insert_many`` of what one SETTLED order writes, three shapes, same run: a document per
  event plus one per order (5 documents) ~950 orders/s; one document with the history as
  embedded BSON ~1,970 orders/s; one document whose history is one JSON string ~4,800
  orders/s. FerretDB pays per BSON field and per byte: the history travels as one string of
  events only (the state is their fold; dropping the copied state and the repeated order id
  halved the body and gave ~20% more), and only the fields a query filters or sorts on are
  top-level. The four secondary indexes cost ~45% of the insert rate (~2,550 against ~4,700
  documents/s) for no read, so ``init_database`` makes them on MongoDB and DocumentDB only.

The ``orders`` collection is therefore an append-only log of *order documents*: one per order
per write in which the order changed (the writer holds an open order's change back for a while
so that most orders are written once, finished), each holding the order's whole history up to
then. ``_id`` is ``"{order_id}:{version:08d}"`` while the order is open and the bare
``order_id`` for the one document holding its terminal state: a finished order is found by
``_id`` alone, and writing a batch twice (a retry, a replay) hits duplicate keys that the writer
ignores, so a replay changes nothing. The design's ``order_events`` and ``executions`` are the
events of that history (``OrderFilled`` is an execution: id, quantity, price, fee; see
``oms.store.ports.executions_of``) and ``positions`` are a fold of the executions: none costs a
document of its own. ``(account_id, client_order_id)`` is not a unique index (an order has
several documents); a client order id is unique per account because the order id is derived
from it (``oms.domain.order_ids``), and ``_id`` is unique.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import orjson
from beanie import Document
from pydantic import Field
from pymongo import ASCENDING, DESCENDING, IndexModel

from oms.codec import CodecError, event_from_dict, event_to_dict
from oms.domain.errors import DomainError
from oms.domain.events import OrderEvent
from oms.domain.orders import Order, fold
from oms.store.ports import StoredOrder

ORDER_INDEXES = [
    IndexModel([("order_id", ASCENDING), ("version", DESCENDING)]),
    IndexModel([("account_id", ASCENDING), ("created_at", DESCENDING)]),
    IndexModel([("symbol", ASCENDING), ("status", ASCENDING)]),
    IndexModel([("terminal", ASCENDING), ("created_at", DESCENDING)]),
]
ACCOUNT_INDEXES = [IndexModel([("account_id", ASCENDING), ("version", DESCENDING)], unique=True)]


class OrderDocument(Document):
    """One state of an order with its history up to that state (insert-only)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # ours, not an ObjectId
    order_id: str
    account_id: str
    symbol: str
    status: str
    terminal: bool
    created_at: float
    version: int
    body: str  # JSON: [event_to_dict without its order_id, ...]; the state is their fold

    class Settings:
        name = "orders"
        bson_encoders = {Decimal: str}
        indexes = ORDER_INDEXES


class AccountDocument(Document):
    """One version of an account: opening balances and the limits from then on (insert-only)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # "{account_id}:{version:06d}"
    account_id: str
    version: int
    balances: dict[str, str]  # opening balances, decimal strings
    limits: dict[str, Any] | None  # codec.limits_to_dict, None: the engine's default
    opened_at: float
    trading_state: str = "ACTIVE"  # the kill switch (absent in versions written before it)

    class Settings:
        name = "accounts"
        bson_encoders = {Decimal: str}
        indexes = ACCOUNT_INDEXES


class KillSwitchDocument(Document):
    """One version of the global kill switch (insert-only, as accounts)."""

    id: str = Field(alias="_id")  # type: ignore[assignment]  # "global:{version:06d}"
    version: int
    trading_state: str
    at: float

    class Settings:
        name = "kill_switch"


DOCUMENT_MODELS: list[type[Document]] = [OrderDocument, AccountDocument, KillSwitchDocument]
INDEXES: dict[str, list[IndexModel]] = {"orders": ORDER_INDEXES, "accounts": ACCOUNT_INDEXES}


def order_document_id(order: Order) -> str:
    """The ``_id`` of the document holding this state: the bare order id once terminal."""
    if order.status.is_terminal:
        return order.order_id
    return f"{order.order_id}:{order.version:08d}"


def order_document(order: Order, history: Sequence[OrderEvent]) -> dict[str, Any]:
    """The raw ``orders`` document (what ``OrderDocument`` validates) of one state and history.

    The body holds the events only, each without the order id the document already names: the
    state is their fold, and a body half the size writes about 20% faster on FerretDB.
    """
    events = []
    for event in history:
        data = event_to_dict(event)
        del data["order_id"]
        events.append(data)
    return {
        "_id": order_document_id(order),
        "order_id": order.order_id,
        "account_id": order.account_id,
        "symbol": order.symbol,
        "status": order.status.value,
        "terminal": order.status.is_terminal,
        "created_at": order.created_at,
        "version": order.version,
        "body": orjson.dumps(events).decode(),
    }


def stored_order(document: dict[str, Any]) -> StoredOrder:
    """The order (the fold of its history) and the history back from a raw ``orders`` document."""
    try:
        order_id = document["order_id"]
        events = tuple(
            event_from_dict({**data, "order_id": order_id})
            for data in orjson.loads(document["body"])
        )
        return StoredOrder(fold(events), events)
    except (KeyError, TypeError, orjson.JSONDecodeError, DomainError) as exc:
        raise CodecError(f"unreadable order document {document.get('_id')!r}: {exc!r}") from exc
