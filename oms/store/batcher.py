"""The write-behind buffer: what the engine saved, served from memory until (and after) it is durable.

No I/O here: the MongoDB writer (``oms.store.mongo_writer``) drains it and reports what it wrote. Two
threads touch it: the engine's dispatcher thread (``save`` and the reads) and the writer's event
loop (``drain``, ``written``); one lock keeps each of their steps whole.

What memory holds, and why that is enough to answer without MongoDB:
- every order that is not terminal (the engine rehydrates passivated orders with ``load``, and
  they must come back at once);
- every order not yet durable;
- the last ``keep_terminal`` durable terminal orders (recent GETs, the listing's first pages).
Older terminal orders are dropped from memory; their ids go into ``gone``, a filter that says
"possibly stored" for each of them and "surely not" for ids it never saw (a new order's id, which
the directory looks up on every placement): only an id it may hold is looked up in MongoDB.

Listing newest first walks a sorted index of what memory holds (per account, and overall), so a
page costs its own length, never a scan of the account; a long walk (filters that match little)
gives the lock back every few hundred orders, so the engine's ``save`` never waits behind a read.
"""

from __future__ import annotations

import hashlib
import threading
import time
from bisect import bisect_left
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from oms.domain.events import OrderEvent
from oms.domain.orders import Order
from oms.engine.ports import OrderQuery, StoredOrder

Key = tuple[float, str]  # (created_at, order_id): the listing's order and its cursor
# Orders a listing looks at per hold of the lock: a few hundred dict look-ups (~50 us), so the
# engine's save waits at most that long behind a read however far the read walks.
_WALK_CHUNK = 512
_BIT = tuple(1 << i for i in range(8))


class IdFilter:
    """A growing Bloom filter of order ids: no false negatives, about 2e-7 false positives per
    slice it holds.

    It grows by slices of ``capacity`` ids (32 bits each: 4 bytes per id, 256 KB a slice of the
    default 65,536), so its memory is a small fraction of what the dropped orders took, and it
    never needs resizing. Slices are small and of one size so that a full one never changes:
    the recovery log (``oms.store.recovery_log``) writes each once, and a replica that starts
    loads the slices of every partition (``adopt``, ``restore``) instead of reading every
    finished order.
    """

    _HASHES = 22  # k for 32 bits per id: (1 - e^(-k/32))^k ~ 2e-7
    BITS_PER_ID = 32

    def __init__(self, capacity: int = 65_536) -> None:
        self._capacity = capacity
        self._bits_per_slice = capacity * self.BITS_PER_ID
        self._slices: list[bytearray] = []
        self._count = 0
        # Read-only slices of other filters (a partition's finished orders), by whose they are.
        self._adopted: dict[object, tuple[bytes, ...]] = {}

    def __len__(self) -> int:
        """How many ids were added."""
        return self._count

    @property
    def slice_bytes(self) -> int:
        """The size of one slice."""
        return self._bits_per_slice // 8 + 1

    def _positions(self, order_id: str) -> list[int]:
        # Double hashing, (h1 + i * h2) mod m for i < k, walked as (h1 mod m) + i * (h2 mod m)
        # with a subtraction instead of a division: the same positions (slices already written
        # stay readable), in small ints.
        digest = hashlib.blake2b(order_id.encode(), digest_size=16).digest()
        m = self._bits_per_slice
        p = int.from_bytes(digest[:8], "little") % m
        step = (int.from_bytes(digest[8:], "little") | 1) % m
        positions = []
        for _ in range(self._HASHES):
            positions.append(p)
            p += step
            if p >= m:
                p -= m
        return positions

    def add(self, order_id: str) -> None:
        """Remember an id."""
        if self._count >= len(self._slices) * self._capacity:
            self._slices.append(bytearray(self.slice_bytes))
        bits = self._slices[-1]
        # ``_positions`` inlined: one add per finished order, on the store's hot path.
        digest = hashlib.blake2b(order_id.encode(), digest_size=16).digest()
        m = self._bits_per_slice
        p = int.from_bytes(digest[:8], "little") % m
        step = (int.from_bytes(digest[8:], "little") | 1) % m
        for _ in range(self._HASHES):
            bits[p >> 3] |= _BIT[p & 7]
            p += step
            if p >= m:
                p -= m
        self._count += 1

    def __contains__(self, order_id: object) -> bool:
        """False: surely never added; True: probably added."""
        if not isinstance(order_id, str) or not (self._slices or self._adopted):
            return False
        positions = self._positions(order_id)
        for bits in self._slices:
            if all(bits[p >> 3] & (1 << (p & 7)) for p in positions):
                return True
        # A copy in one step: recovery may adopt slices while another thread looks an id up.
        for held in tuple(self._adopted.values()):
            for theirs in held:
                if all(theirs[p >> 3] & (1 << (p & 7)) for p in positions):
                    return True
        return False

    def slices(self) -> tuple[bytes, int]:
        """Its own slices as bytes (every one full but the last) and how many ids they hold."""
        return b"".join(self._slices), self._count

    def full_slices(self) -> int:
        """How many of its slices are full (they never change again)."""
        return self._count // self._capacity

    def restore(self, packed: bytes, count: int) -> None:
        """Take back what ``slices`` gave (this filter then goes on adding to the last one)."""
        size = self.slice_bytes
        if len(packed) % size or len(packed) // size < -(-count // self._capacity):
            raise ValueError(f"{len(packed)} bytes are not slices of {size} for {count} ids")
        self._slices = [bytearray(packed[i : i + size]) for i in range(0, len(packed), size)]
        self._count = count

    def adopt(self, whose: object, packed: bytes) -> None:
        """Answer for another filter's slices too (``whose``'s, replacing what it gave before)."""
        size = self.slice_bytes
        if len(packed) % size:
            raise ValueError(f"{len(packed)} bytes are not slices of {size}")
        self._adopted[whose] = tuple(packed[i : i + size] for i in range(0, len(packed), size))


class _Listing:
    """The keys of the orders memory holds, ascending: a page is a bisect and a short walk.

    Sorted by key, not by arrival: ``created_at`` is the door's clock (or a Kafka producer's),
    and orders reach memory a few milliseconds apart in any order. A dropped order's key stays
    (``dead``) until the dead are half the list: removing each at once would move the list's
    tail on every drop, and the oldest keys, where drops happen, are the last a page reaches.
    """

    __slots__ = ("dead", "keys")

    def __init__(self) -> None:
        self.keys: list[Key] = []
        self.dead = 0

    def add(self, key: Key) -> None:
        """Index a key memory now holds (new orders arrive last: appended)."""
        keys = self.keys
        if not keys or keys[-1] < key:
            keys.append(key)
            return
        i = bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:  # held again (re-adopted): its key never left
            self.dead -= 1
            return
        keys.insert(i, key)

    def drop(self, held: dict[str, Order]) -> None:
        """One key's order left memory; compact once the dead are half the keys."""
        self.dead += 1
        if self.dead > _WALK_CHUNK and self.dead * 2 > len(self.keys):
            self.keys = [key for key in self.keys if key[1] in held]
            self.dead = 0


@dataclass(frozen=True, slots=True)
class Drained:
    """One write's worth: every order changed since the last drain, with its history."""

    mark: int  # durable up to this save once written
    states: tuple[StoredOrder, ...]


class WriteBehind:
    """Orders and histories in memory, the pending changes, and how far they are durable."""

    def __init__(self, keep_terminal: int = 100_000) -> None:
        self.keep_terminal = keep_terminal
        self.lock = threading.Lock()
        self._orders: dict[str, Order] = {}
        self._events: dict[str, list[OrderEvent]] = {}
        self._by_account: dict[str, _Listing] = {}  # newest-first listing, per account
        self._all = _Listing()
        self._pending: dict[str, Order] = {}  # changed since the last drain: latest state
        self._first_mark: dict[str, int] = {}  # per pending order, its oldest unwritten save
        self._since: dict[str, float] = {}  # per pending order, when it became pending
        self._terminal: OrderedDict[str, None] = OrderedDict()  # durable terminal, oldest first
        # The open orders among ``_orders``: a checkpoint's capture runs on the engine thread and
        # walked every order held (23 ms at 100,000 kept terminal orders, measured), stalling
        # the engine; it walks these only.
        self._open: dict[str, None] = {}  # insertion-ordered, as ``_orders``
        self.gone = IdFilter()
        # Newest (created_at, order_id) dropped from memory, per account and overall: above it
        # memory holds every order; at or below it, some are only in MongoDB.
        self._dropped_top: dict[str, Key] = {}
        self._dropped_top_all: Key | None = None
        self.saved = 0  # marks handed out by save
        self.durable = 0  # highest mark known written

    # -- the engine's side (dispatcher thread) -----------------------------------------------

    def save(self, orders: Sequence[Order], events: Sequence[OrderEvent]) -> int:
        """Take one batch into memory and the pending set; returns its durability mark."""
        with self.lock:
            history = self._events
            for event in events:
                found = history.get(event.order_id)
                if found is None:
                    history[event.order_id] = [event]
                elif event.sequence > len(found):  # a replayed event is already there
                    found.append(event)
            known = self._orders
            pending = self._pending
            mark = self.saved + 1
            now = time.monotonic()
            open_ids = self._open
            for order in orders:
                order_id = order.order_id
                if order_id not in known:
                    self._index(order)
                known[order_id] = order
                if order.is_terminal:
                    open_ids.pop(order_id, None)
                else:
                    open_ids[order_id] = None
                if order_id not in pending:
                    self._first_mark[order_id] = mark
                    self._since[order_id] = now
                pending[order_id] = order
            self.saved = mark
            return mark

    def get(self, order_id: str) -> Order | None:
        """The order if memory holds it."""
        return self._orders.get(order_id)

    def load(self, order_id: str) -> StoredOrder | None:
        """The order and its history if memory holds them."""
        with self.lock:
            order = self._orders.get(order_id)
            if order is None:
                return None
            return StoredOrder(order, tuple(self._events.get(order_id, ())[: order.version]))

    def holds(self, order_id: str) -> bool:
        """True when memory has the order."""
        return order_id in self._orders

    def may_be_stored(self, order_id: str) -> bool:
        """True when the order may be in MongoDB although memory lacks it (dropped, recovered)."""
        return order_id in self.gone

    def query(self, query: OrderQuery) -> tuple[list[Order], Key | None]:
        """Memory's first ``limit`` matches, newest first by (created_at, order_id), and the key
        at or below which memory may miss orders that MongoDB holds (None: it misses none).

        Any thread. The walk holds the lock for at most ``_WALK_CHUNK`` orders at a time and
        picks up below the last key it saw, so orders saved meanwhile are neither skipped nor
        seen twice; the dropped key is read with the last chunk (it only grows).
        """
        found: list[Order] = []
        below = query.before
        while True:
            with self.lock:
                if query.account_id is None:
                    listing: _Listing | None = self._all
                    dropped = self._dropped_top_all
                else:
                    listing = self._by_account.get(query.account_id)
                    dropped = self._dropped_top.get(query.account_id)
                if listing is None:
                    return found, dropped
                keys, orders = listing.keys, self._orders
                i = len(keys) if below is None else bisect_left(keys, below)
                stop = max(0, i - _WALK_CHUNK)
                while i > stop:
                    i -= 1
                    order = orders.get(keys[i][1])
                    if order is None:  # dropped; its key awaits compaction
                        continue
                    if query.symbol is not None and order.symbol != query.symbol:
                        continue
                    if query.status is not None and order.status is not query.status:
                        continue
                    found.append(order)
                    if len(found) >= query.limit:
                        return found, dropped
                if i == 0:
                    return found, dropped
                below = keys[i]

    # -- the writer's side (event loop) ------------------------------------------------------

    def pending(self) -> int:
        """How many orders wait for the writer."""
        return len(self._pending)

    def drain(self, required: int | None = None, hold_s: float = 0.0) -> Drained:
        """The changed orders to write now, each once, with its history.

        An open order whose change nobody waits for yet (its oldest unwritten save is after
        ``required``, the highest mark a caller waits on) is held back up to ``hold_s``: most
        orders finish within milliseconds, and one document for the whole life is cheaper than
        one per state. Terminal orders and anything ``required`` are always taken. The mark of
        the drain stops short of the oldest held order's first save.
        """
        with self.lock:
            pending, first, since = self._pending, self._first_mark, self._since
            history = self._events
            cutoff = time.monotonic() - hold_s
            need = self.saved if required is None else required
            taken: list[StoredOrder] = []
            held: dict[str, Order] = {}
            oldest_held: int | None = None
            for order_id, order in pending.items():
                mark = first[order_id]
                if hold_s and mark > need and since[order_id] > cutoff and not order.is_terminal:
                    held[order_id] = order
                    if oldest_held is None or mark < oldest_held:
                        oldest_held = mark
                    continue
                del first[order_id]
                del since[order_id]
                taken.append(StoredOrder(order, tuple(history.get(order_id, ())[: order.version])))
            self._pending = held
            return Drained(self.saved if oldest_held is None else oldest_held - 1, tuple(taken))

    def logged(self, drained: Drained) -> None:
        """``drained`` is durable (in the recovery log): advance the mark."""
        with self.lock:
            self.durable = max(self.durable, drained.mark)

    def written(self, drained: Drained) -> None:
        """``drained`` is in ``orders`` too: advance the mark, then drop the oldest terminal
        orders (a read that misses memory finds them in MongoDB from now on)."""
        with self.lock:
            self.durable = max(self.durable, drained.mark)
            terminal = self._terminal
            for state in drained.states:
                if state.order.is_terminal:
                    terminal[state.order.order_id] = None
            while len(terminal) > self.keep_terminal:
                order_id, _ = terminal.popitem(last=False)
                self._drop(order_id)

    def _drop(self, order_id: str) -> None:
        self._open.pop(order_id, None)
        order = self._orders.pop(order_id, None)
        self._events.pop(order_id, None)
        if order is None:
            return
        self._all.drop(self._orders)
        account = self._by_account.get(order.account_id)
        if account is not None:
            account.drop(self._orders)
        self._forget(order_id, order.account_id, order.created_at)

    def _index(self, order: Order) -> None:
        """List a newly held order (under the lock)."""
        key = (order.created_at, order.order_id)
        self._all.add(key)
        listing = self._by_account.get(order.account_id)
        if listing is None:
            listing = self._by_account[order.account_id] = _Listing()
        listing.add(key)

    def _forget(self, order_id: str, account_id: str, created_at: float) -> None:
        self.gone.add(order_id)
        key = (created_at, order_id)
        top = self._dropped_top.get(account_id)
        if top is None or key > top:
            self._dropped_top[account_id] = key
        if self._dropped_top_all is None or key > self._dropped_top_all:
            self._dropped_top_all = key

    # -- recovery ----------------------------------------------------------------------------

    def forget_durable(self) -> int:
        """Drop from memory every order nothing waits to write (all of them, after a durability
        barrier); reads go to MongoDB until recovery adopts them again. How many were dropped.

        For a replica whose share of the accounts changed: another replica may have moved its
        former orders on since, and what memory held of them would be stale.
        """
        with self.lock:
            pending = self._pending
            dropped = [order_id for order_id in self._orders if order_id not in pending]
            for order_id in dropped:
                self._terminal.pop(order_id, None)
                self._drop(order_id)
            return len(dropped)

    def adopt_open(self, stored: StoredOrder) -> None:
        """Hold an open order read back from MongoDB (already durable, nothing pending)."""
        order = stored.order
        with self.lock:
            order_id = order.order_id
            held = self._orders.get(order_id)
            if held is not None and held.version >= order.version:
                return
            if held is None:
                self._index(order)
            self._orders[order_id] = order
            self._events[order_id] = list(stored.events)
            if order.is_terminal:
                self._open.pop(order_id, None)
            else:
                self._open[order_id] = None

    def adopt_finished_top(self, account_id: str, key: Key) -> None:
        """Note that MongoDB holds finished orders of the account up to ``key`` (created_at,
        order_id) that memory does not: the listing merges them from there down."""
        with self.lock:
            top = self._dropped_top.get(account_id)
            if top is None or key > top:
                self._dropped_top[account_id] = key
            if self._dropped_top_all is None or key > self._dropped_top_all:
                self._dropped_top_all = key

    def capture(
        self, chosen: Callable[[str], bool]
    ) -> tuple[int, list[StoredOrder], dict[str, int]]:
        """For a checkpoint (the engine thread, at an idle point): the mark of everything saved
        so far, every open order of the accounts ``chosen`` says yes to, with its history, and
        the version of each of their orders not yet written (open or not): what the checkpoint
        holds of them, so that recovery takes only what was saved after it."""
        with self.lock:
            events, orders = self._events, self._orders
            open_orders = [
                StoredOrder(order, tuple(events.get(order_id, ())[: order.version]))
                for order_id in self._open
                if chosen((order := orders[order_id]).account_id)
            ]
            versions = {s.order.order_id: s.order.version for s in open_orders}
            for order_id, order in self._pending.items():
                if chosen(order.account_id):
                    versions[order_id] = order.version
            return self.saved, open_orders, versions

    def adopt_finished(self, order_id: str, account_id: str, created_at: float) -> None:
        """Note a terminal order that stays in MongoDB only (for lookups and the listing)."""
        with self.lock:
            if order_id not in self._orders:
                self._forget(order_id, account_id, created_at)

    def __len__(self) -> int:
        """How many orders memory holds."""
        return len(self._orders)
