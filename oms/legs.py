"""Where an order's time goes between its POST (or produce) and its published ``OrderAccepted``,
leg by leg, for ``/metrics`` (``oms_order_leg_seconds{leg}``) and ``bench/e2e.py``.

Each leg is timed by the part that sees both of its ends, by the wall clock (the events' own
``at`` is the engine's ``time.time()``), and counted in a ``Durations`` that only that part's
thread writes (no lock on the hot path; a scrape tolerates a count one observation ahead):

- ``post``: the door, from the handler taking ``POST /api/orders`` to its 202 (validation, the
  Redis claim, the produce to ``orders`` acknowledged, the cache). The event loop.
- ``claim``, ``produce``, ``cache``: the parts of ``post`` that wait on a server: the Redis
  claim of the idempotency key and client order id, the produce to ``orders`` until Kafka
  acknowledged it (acks=all), and the NEW order's write to the Redis cache. What ``post`` has
  beyond them is the door's own CPU and its event loop's queue. The event loop.
- ``consume``: from the ``orders`` record's timestamp (its producer's clock when it was sent)
  to the ingestion fetching it. The event loop.
- ``engine``: from that fetch to risk's decision (``OrderAccepted``/``OrderRejected.at``): the
  hand-over to the dispatcher thread, its queue and the actors. The ingestion notes the fetch
  per order (``fetched``), the order feed takes it at the decision: both on the event loop.
- ``to_write``: from an order's last change in a write (its newest event's ``at``) to that
  write starting: the journal, the store's memory and the group commit's wait (and, for an
  order held open by ``hold_open_s``, the rest of its short life). The store's thread.
- ``write``: that write, from its first insert to its last: the recovery log's deltas, which
  make the batch durable (``orders`` is written behind them, ``oms.store.mongo_writer``), per
  order document written. The store's thread.
- ``publish``: from the durable batch reaching the event sink to its records being handed to
  the producer (the sink's queue and encoding). The event loop.

The existing ``oms_order_latency_seconds`` (``entry``, ``durable``, ``accept``) stays the SLO's
figure; these split it further.
"""

from __future__ import annotations

from oms.durations import Durations

LEGS = ("post", "claim", "produce", "cache", "consume", "engine", "to_write", "write", "publish")
# From a quarter of a millisecond (an idle hop) to seconds (an overloaded door): fine enough
# below 50 ms (the SLO) that a p50 read from the buckets is within a millisecond or two.
LEG_BOUNDS_S = (
    0.00025, 0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.04, 0.05,
    0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Fetch times held for orders whose decision has not been seen (a replayed command for an
# order already decided never gets one): past this many the oldest half is dropped.
MAX_FETCHED = 100_000


class Legs:
    """One ``Durations`` per leg, and the fetch time of each order waiting for its decision."""

    def __init__(self) -> None:
        self.durations = {leg: Durations(LEG_BOUNDS_S) for leg in LEGS}
        self._fetched: dict[str, float] = {}

    def fetched(self, order_id: str, at: float) -> None:
        """The ingestion fetched ``order_id``'s place at ``at`` (event loop only)."""
        fetched = self._fetched
        if len(fetched) >= MAX_FETCHED:
            for stale in list(fetched)[: MAX_FETCHED // 2]:  # oldest first: insertion order
                del fetched[stale]
        fetched[order_id] = at

    def decided(self, order_id: str, at: float) -> None:
        """Risk decided ``order_id`` at ``at``: time its ``engine`` leg (event loop only)."""
        fetched = self._fetched.pop(order_id, None)
        if fetched is not None:
            self.durations["engine"].observe(max(at - fetched, 0.0))
