"""The recovery log: per partition of ``orders``, a checkpoint and what was written after it.

Why it exists. A restart used to read every document of ``orders`` (5.3 s at 37,610 documents)
to find the open orders and every fill, and the time grew with history. On MongoDB and
DocumentDB an index would find the open orders; on FerretDB 1.24, the local and CI server, no
query reads through an index. Measured on this machine on a 50,000-document ``orders``
collection: on SQLite an ``_id`` lookup took 0.8 ms for the first document and 703 ms for the
last, an equality on another field 5.0-6.4 s, a range 7.5-9.9 s, indexed or not; on PostgreSQL
(``--handler=postgresql``) an ``_id`` or equality lookup was pushed down but still scanned
(62-118 ms, with or without an index), and a range was not pushed down (8.3-9.0 s). So recovery
reads only small collections, whole, and never ``orders``.

What it holds, for each partition ``p`` of ``orders`` (the unit one replica owns):

- ``recovery_n{N}_p{p}_e{epoch}``: one collection per epoch. A *delta* document per write of
  the store, written before that write's order documents: the partition's order documents of
  the write as one zlib-compressed JSON blob (one insert of a binary field costs FerretDB far
  less than the documents' fields: 20,000 orders went in at ~90,000 orders/s in blobs of 1,000
  and ~9,500/s in blobs of 20, against ~7,400 documents/s into ``orders``). A *checkpoint*
  opens each epoch after the first: the ledger of the partition's accounts, its open orders,
  the versions it holds of orders not yet written then, the newest finished order per account,
  the part of the finished-order filter not yet full, and where ``order-events`` stood.
- ``recovery_n{N}_p{p}_finished``: the full slices of the partition's finished-order filter
  (``IdFilter``; 4 bytes per finished order), each written once.

Recovery of a partition reads its newest checkpoint, the deltas of that epoch and any later one,
and the filter's slices: what the checkpoint interval let through, not what history holds. The
epochs before the newest checkpoint are dropped (a collection drop: no scan). ``recovery_meta``
says the log holds everything from the database's first order; a database older than the log
is read whole once (``MongoOrderRepository``) and checkpointed.
"""

from __future__ import annotations

import contextlib
import re
import zlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from bson import Binary

from oms.codec import CodecError
from oms.domain.events import OrderEvent
from oms.engine.ports import Execution, StoredOrder, executions_of
from oms.risk.checkpoint import (
    AccountLedger,
    LedgerCheckpoint,
    PositionFigures,
    RecordFigures,
)
from oms.risk.restore import Acceptance, accepted_after
from oms.store.batcher import Key

Raw = dict[str, Any]

META = "recovery_meta"
CHECKPOINT = "checkpoint"
DELTA_PREFIX = "d:"
# Checkpoint payloads are split into parts of this many compressed bytes (a document holds
# 16 MiB at most).
PART_BYTES = 8 * 1024 * 1024
_ZLIB_LEVEL = 1  # 5-11 us per order document and ~80-100 bytes each (measured), level 6 no better


class LogError(CodecError):
    """A recovery log document cannot be read."""

    code = "RECOVERY_LOG_UNREADABLE"


def meta_id(partitions: int) -> str:
    """The ``recovery_meta`` document saying the log of ``partitions`` partitions is whole."""
    return f"log:n{partitions}"


def epoch_collection(partitions: int, partition: int, epoch: int) -> str:
    """The collection of one epoch of one partition's log."""
    return f"recovery_n{partitions}_p{partition}_e{epoch:010d}"


def finished_collection(partitions: int, partition: int) -> str:
    """The collection of one partition's full finished-order filter slices."""
    return f"recovery_n{partitions}_p{partition}_finished"


def epochs_in(names: Iterable[str], partitions: int) -> dict[int, list[int]]:
    """Per partition, the epochs whose collections exist (ascending)."""
    pattern = re.compile(rf"recovery_n{partitions}_p(\d+)_e(\d+)$")
    found: dict[int, list[int]] = {}
    for name in names:
        match = pattern.match(name)
        if match is not None:
            found.setdefault(int(match.group(1)), []).append(int(match.group(2)))
    return {p: sorted(epochs) for p, epochs in found.items()}


def pack(value: Any) -> bytes:
    """JSON, compressed."""
    return zlib.compress(orjson.dumps(value), _ZLIB_LEVEL)


def unpack(blob: bytes) -> Any:
    """What ``pack`` packed."""
    try:
        return orjson.loads(zlib.decompress(blob))
    except (zlib.error, orjson.JSONDecodeError) as exc:
        raise LogError(f"unreadable recovery log blob: {exc!r}") from exc


# -- deltas --------------------------------------------------------------------------------


def delta_document(writer: str, number: int, stored: int, orders: Sequence[Raw]) -> Raw:
    """One write's order documents of one partition. ``stored``: this writer's writes up to that
    number have their ``orders`` documents written (recovery writes the later ones again)."""
    return {
        "_id": f"{DELTA_PREFIX}{writer}:{number:012d}",
        "writer": writer,
        "n": number,
        "stored": stored,
        "orders": Binary(pack(list(orders))),
    }


def delta_orders(document: Raw) -> list[Raw]:
    """The order documents a delta holds."""
    orders = unpack(document["orders"])
    if not isinstance(orders, list):
        raise LogError(f"delta {document.get('_id')!r} holds no list of orders")
    return orders


# -- checkpoints ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Capture:
    """The store's side of a checkpoint, taken with the ledger at one idle point."""

    mark: int  # everything saved up to here is in it (write it once durable up to here)
    epochs: Mapping[int, int]  # per partition, the epoch the checkpoint opens
    open_orders: Mapping[int, tuple[StoredOrder, ...]]  # per partition
    versions: Mapping[int, Mapping[str, int]]  # per partition: open and not yet written orders


@dataclass(frozen=True, slots=True)
class PartitionCheckpoint:
    """One partition's checkpoint, as read back."""

    ledger: LedgerCheckpoint
    open_orders: tuple[Raw, ...]  # order documents
    versions: Mapping[str, int]
    finished_top: Mapping[str, Key]
    finished: bytes  # the filter's slices (full ones and the partial last)
    finished_count: int
    events_from: Mapping[int, int] | None  # order-events offsets before the checkpoint's moment


def checkpoint_documents(
    *,
    ledger: LedgerCheckpoint,
    open_orders: Sequence[Raw],
    versions: Mapping[str, int],
    finished_top: Mapping[str, Key],
    partial: bytes,
    full_slices: int,
    finished_count: int,
    events_from: Mapping[int, int] | None,
    at: float,
) -> list[Raw]:
    """The parts, then the head (written last: a head means the checkpoint is whole)."""
    payload = pack(
        {
            "ledger": ledger_to_dict(ledger),
            "open": list(open_orders),
            "versions": dict(versions),
            "finished_top": {account: list(key) for account, key in finished_top.items()},
        }
    )
    parts = [payload[i : i + PART_BYTES] for i in range(0, len(payload), PART_BYTES)] or [b""]
    documents: list[Raw] = [
        {"_id": f"{CHECKPOINT}:{i}", "bytes": Binary(part)} for i, part in enumerate(parts)
    ]
    documents.append(
        {
            "_id": CHECKPOINT,
            "parts": len(parts),
            "at": at,
            "full_slices": full_slices,
            "finished_count": finished_count,
            "partial": Binary(zlib.compress(partial, _ZLIB_LEVEL)),
            "events_from": None
            if events_from is None
            else {str(q): offset for q, offset in events_from.items()},
        }
    )
    return documents


def read_checkpoint(
    head: Raw, documents: Mapping[str, Raw], full: Sequence[Raw]
) -> PartitionCheckpoint:
    """A checkpoint from its head, the epoch's documents by ``_id`` and the filter's full
    slices (``{_id: index, bits}``)."""
    try:
        payload = b"".join(
            bytes(documents[f"{CHECKPOINT}:{i}"]["bytes"]) for i in range(int(head["parts"]))
        )
        data = unpack(payload)
        wanted = int(head["full_slices"])
        slices = sorted((int(d["_id"]), bytes(d["bits"])) for d in full if int(d["_id"]) < wanted)
        if [i for i, _ in slices] != list(range(wanted)):
            raise LogError(f"{wanted} full filter slices expected, {len(slices)} found")
        partial = zlib.decompress(bytes(head["partial"]))
        events_from = head.get("events_from")
        return PartitionCheckpoint(
            ledger=ledger_from_dict(data["ledger"]),
            open_orders=tuple(data["open"]),
            versions={str(k): int(v) for k, v in data["versions"].items()},
            finished_top={a: (float(k[0]), str(k[1])) for a, k in data["finished_top"].items()},
            finished=b"".join(bits for _, bits in slices) + partial,
            finished_count=int(head["finished_count"]),
            events_from=None
            if events_from is None
            else {int(q): int(offset) for q, offset in events_from.items()},
        )
    except (KeyError, TypeError, ValueError, ArithmeticError, zlib.error) as exc:
        raise LogError(f"unreadable checkpoint: {exc!r}") from exc


def ledger_to_dict(ledger: LedgerCheckpoint) -> list[Raw]:
    """JSON-ready, amounts as decimal strings."""
    return [
        {
            "account_id": a.account_id,
            "balances": {asset: [str(v), str(r)] for asset, (v, r) in a.balances.items()},
            "positions": [
                [p.symbol, str(p.quantity), str(p.average_price), str(p.realized_pnl), str(p.fees)]
                for p in a.positions
            ],
            "realized_pnl": str(a.realized_pnl),
            "records": [_record_to_list(r) for r in a.records],
            "velocity": [[at, str(notional)] for at, notional in a.velocity],
            "day": a.day,
            "day_start_pnl": str(a.day_start_pnl),
        }
        for a in ledger.accounts
    ]


def ledger_from_dict(data: Sequence[Raw]) -> LedgerCheckpoint:
    """What ``ledger_to_dict`` wrote."""
    return LedgerCheckpoint(
        tuple(
            AccountLedger(
                str(a["account_id"]),
                {asset: (Decimal(v), Decimal(r)) for asset, (v, r) in a["balances"].items()},
                tuple(
                    PositionFigures(str(s), Decimal(q), Decimal(avg), Decimal(pnl), Decimal(fee))
                    for s, q, avg, pnl, fee in a["positions"]
                ),
                Decimal(a["realized_pnl"]),
                tuple(_record_from_list(r) for r in a["records"]),
                # Absent from a checkpoint written before the risk counters were kept.
                tuple((float(at), Decimal(n)) for at, n in a.get("velocity", ())),
                None if a.get("day") is None else int(a["day"]),
                Decimal(a.get("day_start_pnl", "0")),
            )
            for a in data
        )
    )


def _record_to_list(r: RecordFigures) -> list[Any]:
    return [
        r.order_id,
        r.symbol,
        r.is_buy,
        str(r.amount),
        str(r.protection),
        str(r.remaining),
        str(r.reserved),
        list(r.fill_ids),
    ]


def _record_from_list(held: Sequence[Any]) -> RecordFigures:
    order_id, symbol, is_buy, amount, protection, remaining, reserved, fill_ids = held
    return RecordFigures(
        str(order_id),
        str(symbol),
        bool(is_buy),
        Decimal(amount),
        Decimal(protection),
        Decimal(remaining),
        Decimal(reserved),
        tuple(str(f) for f in fill_ids),
    )


# -- folding one partition -----------------------------------------------------------------


@dataclass
class PartitionRecovery:
    """What one partition's checkpoint and later deltas say."""

    open_orders: list[StoredOrder] = field(default_factory=list)
    finished: list[tuple[str, str, float]] = field(default_factory=list)  # id, account, created
    fills: list[Execution] = field(default_factory=list)  # stored after the checkpoint
    unpublished: list[tuple[OrderEvent, str]] = field(default_factory=list)  # ditto, in order
    accepted: list[Acceptance] = field(default_factory=list)  # accepted after the checkpoint
    resave: list[StoredOrder] = field(default_factory=list)  # maybe missing from ``orders``
    unreadable: list[str] = field(default_factory=list)  # ``_id`` of order documents skipped


def _newer(document: Raw, held: Raw) -> bool:
    """A terminal document wins; between open ones, the higher version."""
    return not held["terminal"] and (document["terminal"] or document["version"] > held["version"])


def fold(
    base: PartitionCheckpoint | None,
    deltas: Sequence[Raw],
    decode: Callable[[Raw], StoredOrder],
    usable: Callable[[Raw], bool] = lambda _document: True,
) -> PartitionRecovery:
    """Each order's latest state after the checkpoint (``base``) and the deltas, and what the
    deltas added to it: fills, events and acceptances after the version the checkpoint holds.

    ``decode`` turns an order document into a ``StoredOrder`` (``documents.stored_order``);
    a document ``usable`` refuses (fields missing) or ``decode`` cannot read is left out and
    named in ``unreadable``, never fatal. A delta that cannot be unpacked raises ``LogError``.
    """
    result = PartitionRecovery()
    latest, unsure = _latest(base, deltas, usable, result.unreadable)
    versions: Mapping[str, int] = {} if base is None else base.versions
    for order_id, document in latest.items():
        try:
            stored = decode(document)
        except CodecError:
            result.unreadable.append(str(document.get("_id")))
            continue
        order = stored.order
        if order.is_terminal:
            result.finished.append((order_id, order.account_id, order.created_at))
        else:
            result.open_orders.append(stored)
        since = versions.get(order_id, 0)
        if order.version > since:
            after = tuple(e for e in stored.events if e.sequence > since)
            result.fills.extend(executions_of(StoredOrder(order, after)))
            result.unpublished.extend((event, order.account_id) for event in after)
            accepted = accepted_after(stored.events, since)
            if accepted is not None:
                result.accepted.append(accepted)
    for document in unsure.values():
        with contextlib.suppress(CodecError):  # named above, as the order's latest
            result.resave.append(decode(document))
    result.open_orders.sort(key=lambda s: (s.order.created_at, s.order.order_id))
    return result


def _latest(
    base: PartitionCheckpoint | None,
    deltas: Sequence[Raw],
    usable: Callable[[Raw], bool],
    unreadable: list[str],
) -> tuple[dict[str, Raw], dict[str, Raw]]:
    """Per order its latest document, and (of those) the ones written by a write whose order
    documents may be missing from ``orders``: after the highest write its writer's deltas say
    is stored."""
    latest: dict[str, Raw] = {}
    if base is not None:
        for document in base.open_orders:
            latest[document["order_id"]] = document
    stored_upto: dict[str, int] = {}
    batches: list[tuple[str, int, list[Raw]]] = []
    for delta in deltas:
        writer = str(delta["writer"])
        stored_upto[writer] = max(stored_upto.get(writer, 0), int(delta["stored"]))
        batches.append((writer, int(delta["n"]), delta_orders(delta)))
    unsure: dict[str, Raw] = {}
    for writer, number, documents in batches:
        for document in documents:
            if not usable(document):
                unreadable.append(str(document.get("_id")))
                continue
            order_id = document["order_id"]
            held = latest.get(order_id)
            if held is None or _newer(document, held):
                latest[order_id] = document
            if number > stored_upto[writer]:
                doubt = unsure.get(order_id)
                if doubt is None or _newer(document, doubt):
                    unsure[order_id] = document
    return latest, unsure
