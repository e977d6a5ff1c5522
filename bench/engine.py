"""EngineCore benchmark: orders from place to SETTLED through the ``EngineCore``, and resting orders.

    python bench/engine.py --orders 100000      # throughput and per-order latency
    python bench/engine.py --resting 1000000    # memory and threads with R resting limit orders
    python bench/engine.py --mix --orders 20000 # limits, amends, cancels, stops beside MARKET

Prints ``name: value`` lines only (a script reads them); never asserts a timing.

Throughput mode: a seeded mix of MARKET and marketable LIMIT (GTC and IOC) orders, BUY and SELL,
over several accounts and symbols, submitted in batches (as the stream layer hands them on) with
at most ``--window`` orders in flight; latency is per order, from its submission to its
OrderSettled event reaching a subscriber. With a window of thousands, that latency is mostly the
wait behind the window; a second run (``--latency-window``, default 100 in flight) prints the
latency of an engine that is busy but not queued up, as ``latency_p50_ms``/``latency_p99_ms``.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import threading
import time
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from oms.config import Settings
from oms.domain.commands import AmendOrder, CancelOrder, PlaceOrder
from oms.domain.enums import OrderType, Side, TimeInForce
from oms.domain.events import OrderCancelled, OrderEvent, OrderRejected, OrderSettled
from oms.domain.limits import RiskLimits
from oms.engine.core import EngineCore
from oms.gc_tuning import tune_gc
from oms.marketdata import BookLevel, Tick
from oms.store.memory import MemoryOrderRepository

_PROCESS = psutil.Process()


class _PeakRss:
    """Samples RSS in the background (every 50 ms) and keeps the peak."""

    def __init__(self) -> None:
        self.peak = _PROCESS.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> _PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _PROCESS.memory_info().rss)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, _PROCESS.memory_info().rss)


def _thread_cpu_s(thread: threading.Thread | None) -> float:
    """CPU seconds (user + system) a thread has used so far, read from the OS by its native id."""
    if thread is None or thread.native_id is None:
        return 0.0
    for info in _PROCESS.threads():
        if info.id == thread.native_id:
            return float(info.user_time + info.system_time)
    return 0.0


def _engine(accounts: int, symbols_seed: int) -> tuple[EngineCore, list[str]]:
    engine = EngineCore(
        Settings(feed_seed=symbols_seed),
        repository=MemoryOrderRepository(),
        # Checks that cost nothing to pass stay on; no limit a benchmark would trip.
        default_limits=RiskLimits(price_collar=Decimal("0.10")),
    )
    engine.start()
    ids = [f"acct-{n}" for n in range(accounts)]
    funds = {
        "USD": Decimal(10) ** 12,
        "BTC": Decimal(10) ** 6,
        "ETH": Decimal(10) ** 7,
        "SOL": Decimal(10) ** 9,
    }
    for account_id in ids:
        engine.open_account(account_id, funds).get(timeout=10)
    engine.advance_market(time.time())
    engine.wait_idle()
    return engine, ids


def _orders(engine: EngineCore, accounts: list[str], n: int, seed: int) -> list[PlaceOrder]:
    rng = random.Random(seed)
    books = {s: engine.order_book(s).get(timeout=10) for s in engine.instruments}
    out: list[PlaceOrder] = []
    now = time.time()
    for i in range(n):
        symbol = rng.choice(list(engine.instruments))
        instrument = engine.instruments[symbol]
        book = books[symbol]
        assert book is not None
        assert book.best_ask is not None
        assert book.best_bid is not None
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        lots = rng.randint(1, 20)
        quantity = instrument.lot_size * lots
        if rng.random() < 0.5:
            kind, price, tif = OrderType.MARKET, None, TimeInForce.GTC
        else:
            kind = OrderType.LIMIT
            tif = TimeInForce.GTC if rng.random() < 0.7 else TimeInForce.IOC
            # Marketable: a few ticks through the touch, so it fills on arrival.
            through = instrument.tick_size * rng.randint(1, 50)
            price = book.best_ask + through if side is Side.BUY else book.best_bid - through
        account = rng.choice(accounts)
        out.append(
            PlaceOrder(
                f"c{i}", f"o{i}", f"cl{i}", account, symbol, side, kind, quantity, price, tif, now
            )
        )
    return out


_WINDOW = 4000  # orders in flight at most, by default


def _as_market(orders: list[PlaceOrder]) -> list[PlaceOrder]:
    """The same orders, each a MARKET IOC (the profile the NautilusTrader figure is of)."""
    return [
        replace(order, type=OrderType.MARKET, price=None, time_in_force=TimeInForce.IOC)
        for order in orders
    ]


def _count_ended(engine: EngineCore, n: int) -> tuple[list[int], threading.Event]:
    """Count the orders that end (settled, cancelled or rejected) in ``ended[0]``; ``finished``
    is set once ``n`` have."""
    ended = [0]
    finished = threading.Event()

    def listener(events: list[OrderEvent]) -> None:
        for event in events:
            if type(event) in (OrderSettled, OrderCancelled, OrderRejected):
                ended[0] += 1
        if ended[0] >= n:
            finished.set()

    engine.subscribe(listener)  # type: ignore[arg-type]
    return ended, finished


def _flow(
    n: int, accounts: int, window: int, batch: int, seed: int, *, market_only: bool = False
) -> dict[str, float]:
    """Place ``n`` orders, at most ``window`` in flight, and wait until every one is terminal
    (``market_only``: each order as a MARKET IOC, the profile the NautilusTrader figure is of)."""
    engine, ids = _engine(accounts, seed)
    orders = _orders(engine, ids, n, seed)
    if market_only:
        orders = _as_market(orders)
    submitted_at: dict[str, float] = {}
    latencies: list[float] = []
    done = [0, 0]  # settled, other terminal
    room = threading.Event()
    finished = threading.Event()

    def listener(events: list[OrderEvent]) -> None:
        clock = time.perf_counter()
        for event in events:
            if type(event) is OrderSettled:
                latencies.append(clock - submitted_at[event.order_id])
                done[0] += 1
            elif type(event) in (OrderCancelled, OrderRejected):
                done[1] += 1
        outstanding = len(submitted_at) - done[0] - done[1]
        if outstanding <= window // 2:
            room.set()
        if done[0] + done[1] >= n:
            finished.set()

    engine.subscribe(listener)  # type: ignore[arg-type]
    tune_gc()
    dispatcher = engine.dispatcher.thread
    with _PeakRss() as rss:
        cpu_start = _thread_cpu_s(dispatcher)
        process_start = time.process_time()
        start = time.perf_counter()
        i = 0
        while i < n:
            if len(submitted_at) - done[0] - done[1] >= window:
                room.clear()
                if len(submitted_at) - done[0] - done[1] >= window:
                    room.wait()
            chunk = orders[i : i + batch]
            clock = time.perf_counter()
            for order in chunk:
                submitted_at[order.order_id] = clock
            engine.submit(chunk)
            i += batch
        finished.wait()
        elapsed = time.perf_counter() - start
        cpu = _thread_cpu_s(dispatcher) - cpu_start
        process_cpu = time.process_time() - process_start
        stats = engine.stats().get(timeout=10)
        threads = threading.active_count()
    engine.stop()
    latencies.sort()
    return {
        "settled": done[0],
        "cancelled_or_rejected": done[1],
        "elapsed_s": elapsed,
        "dispatcher_cpu_s": cpu,
        "process_cpu_s": process_cpu,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "peak_rss_mb": rss.peak / 2**20,
        "peak_live_actors": stats["peak_live"],
        "threads": threads,
    }


def throughput(
    n: int, accounts: int, window: int, batch: int, seed: int, *, market_only: bool = False
) -> None:
    """Place ``n`` orders and wait until every one is terminal; print the figures.

    ``orders_per_cpu_s`` divides by the CPU time of the dispatcher thread (the engine's only
    thread): on a machine shared with other work, wall-clock ``orders_per_s`` swings with the
    load, this much less. ``p50_ms``/``p99_ms`` here are dominated by the ``window`` of orders
    queued ahead of each one (Little's law: about window / throughput); see ``latency``.
    """
    figures = _flow(n, accounts, window, batch, seed, market_only=market_only)
    cpu = figures["dispatcher_cpu_s"]
    print(f"orders: {n}")
    print(f"settled: {figures['settled']}")
    print(f"cancelled_or_rejected: {figures['cancelled_or_rejected']}")
    print(f"window: {window}")
    print(f"elapsed_s: {figures['elapsed_s']:.2f}")
    print(f"orders_per_s: {n / figures['elapsed_s']:.1f}")
    print(f"dispatcher_cpu_s: {cpu:.2f}")
    print(f"orders_per_cpu_s: {n / cpu:.1f}" if cpu else "orders_per_cpu_s: nan")
    print(f"process_cpu_s: {figures['process_cpu_s']:.2f}")
    print(f"p50_ms: {figures['p50_ms']:.2f}")
    print(f"p99_ms: {figures['p99_ms']:.2f}")
    print(f"peak_rss_mb: {figures['peak_rss_mb']:.0f}")
    print(f"peak_live_actors: {figures['peak_live_actors']}")
    print(f"threads: {figures['threads']}")


def latency(n: int, accounts: int, window: int, seed: int) -> None:
    """A second run with few orders in flight: the per-order latency itself, not the queue's.

    Submits in batches of a quarter of ``window`` so the engine is never idle nor flooded;
    printed with a ``latency_`` prefix.
    """
    figures = _flow(n, accounts, window, max(window // 4, 1), seed)
    print(f"latency_orders: {n}")
    print(f"latency_window: {window}")
    print(f"latency_orders_per_s: {n / figures['elapsed_s']:.1f}")
    print(f"latency_p50_ms: {figures['p50_ms']:.2f}")
    print(f"latency_p99_ms: {figures['p99_ms']:.2f}")


def resting(r: int, accounts: int, batch: int, seed: int) -> None:
    """Hold ``r`` resting limit orders; print RSS and threads."""
    engine, ids = _engine(accounts, seed)
    rng = random.Random(seed)
    books = {s: engine.order_book(s).get(timeout=10) for s in engine.instruments}
    symbols = list(engine.instruments)
    now = time.time()
    tune_gc()
    with _PeakRss() as rss:
        start = time.perf_counter()
        for first in range(0, r, batch):
            chunk = []
            for i in range(first, min(first + batch, r)):
                symbol = symbols[i % len(symbols)]
                instrument = engine.instruments[symbol]
                book = books[symbol]
                assert book is not None
                assert book.best_bid is not None
                assert book.best_ask is not None
                side = Side.BUY if i % 2 else Side.SELL
                away = instrument.tick_size * rng.randint(1000, 3000)  # well off the touch
                price = book.best_bid - away if side is Side.BUY else book.best_ask + away
                chunk.append(
                    PlaceOrder(
                        f"c{i}",
                        f"r{i}",
                        f"cl{i}",
                        rng.choice(ids),
                        symbol,
                        side,
                        OrderType.LIMIT,
                        instrument.lot_size,
                        price,
                        TimeInForce.GTC,
                        now,
                    )
                )
            engine.submit(chunk)
            if first // batch % 20 == 0:
                engine.wait_idle(600)  # keep the queue (and its memory) bounded
        engine.wait_idle(600)
        elapsed = time.perf_counter() - start
        resting_now = engine.resting_count().get(timeout=60)
        stats = engine.stats().get(timeout=60)
        gc.collect()
        rss_now = _PROCESS.memory_info().rss
        threads = threading.active_count()
    print(f"resting_orders: {resting_now}")
    print(f"place_s: {elapsed:.1f}")
    print(f"rss_mb: {rss_now / 2**20:.0f}")
    print(f"peak_rss_mb: {rss.peak / 2**20:.0f}")
    print(f"live_actors: {stats['live']}")
    print(f"passivated: {stats['passivated']}")
    print(f"threads: {threads}")
    engine.stop()


def _mix_commands(
    engine: EngineCore, accounts: list[str], n: int, seed: int
) -> tuple[list[PlaceOrder], list[AmendOrder], list[CancelOrder]]:
    """``n`` orders: 40% resting LIMITs (each then amended and cancelled), 20% stops that the
    market then reaches (STOP_MARKET IOC, 2% beyond the touch: a stop already behind the
    market is refused, ``STOP_PRICE_WRONG_SIDE``), 40% marketable LIMITs."""
    rng = random.Random(seed)
    books = {s: engine.order_book(s).get(timeout=10) for s in engine.instruments}
    places: list[PlaceOrder] = []
    amends: list[AmendOrder] = []
    cancels: list[CancelOrder] = []
    now = time.time()
    for i in range(n):
        symbol = rng.choice(list(engine.instruments))
        instrument = engine.instruments[symbol]
        book = books[symbol]
        assert book is not None
        assert book.best_ask is not None
        assert book.best_bid is not None
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        quantity = instrument.lot_size * rng.randint(2, 20)
        account = rng.choice(accounts)
        tick = instrument.tick_size
        roll = rng.random()
        if roll < 0.4:  # rests well off the touch, then amended (smaller, or repriced), cancelled
            away = tick * rng.randint(500, 1500)
            price = book.best_bid - away if side is Side.BUY else book.best_ask + away
            places.append(
                PlaceOrder(f"c{i}", f"m{i}", f"cl{i}", account, symbol, side,
                           OrderType.LIMIT, quantity, price, TimeInForce.GTC, now)
            )  # fmt: skip
            if rng.random() < 0.5:
                amends.append(
                    AmendOrder(f"a{i}", f"m{i}", account, now, quantity - instrument.lot_size)
                )
            else:
                nearer = price + tick if side is Side.BUY else price - tick
                amends.append(AmendOrder(f"a{i}", f"m{i}", account, now, None, nearer))
            cancels.append(CancelOrder(f"x{i}", f"m{i}", account, now))
        elif roll < 0.6:  # a stop the market then reaches: it then fills as a MARKET order
            beyond = (book.best_bid * Decimal("0.02")).quantize(tick)  # beyond a tick's move
            stop = book.best_ask + beyond if side is Side.BUY else book.best_bid - beyond
            places.append(
                PlaceOrder(f"c{i}", f"m{i}", f"cl{i}", account, symbol, side,
                           OrderType.STOP_MARKET, quantity, None, TimeInForce.IOC, now,
                           None, False, stop)
            )  # fmt: skip
        else:  # marketable: fills on arrival
            through = tick * rng.randint(1, 50)
            price = book.best_ask + through if side is Side.BUY else book.best_bid - through
            places.append(
                PlaceOrder(f"c{i}", f"m{i}", f"cl{i}", account, symbol, side,
                           OrderType.LIMIT, quantity, price, TimeInForce.IOC, now)
            )  # fmt: skip
    return places, amends, cancels


def _through_the_stops(engine: EngineCore, places: list[PlaceOrder]) -> list[Tick]:
    """Per symbol, a tick up to its BUY stops, then one down to its SELL stops (each side's
    stops of a symbol share one price: they were priced from one book), with depth for all.

    The last price and the bid sit at the stop, the ask one tick above: every stop of that side
    triggers and fills, within its protection (the collar around its stop price).
    """
    stops = {(p.symbol, p.side): p.stop_price for p in places if p.stop_price is not None}
    ticks: list[Tick] = []
    for side in (Side.BUY, Side.SELL):
        for (symbol, stop_side), stop in sorted(stops.items()):
            if stop_side is not side or stop is None:
                continue
            instrument = engine.instruments[symbol]
            ask = stop + instrument.tick_size
            depth = instrument.lot_size * 10**9
            ticks.append(
                Tick(symbol, stop, stop, ask, (BookLevel(stop, depth),), (BookLevel(ask, depth),),
                     time.time())
            )  # fmt: skip
    return ticks


def mix(n: int, accounts: int, batch: int, seed: int) -> None:
    """The mixed profile (``--mix``): limits that rest, are amended and cancelled; stops the
    market triggers; marketable limits. Every command goes through ``submit`` in batches; the
    clock stops once every order is terminal. Printed beside a MARKET-only run of the same
    size (``market_orders_per_s``), which the mix is measured against."""
    engine, ids = _engine(accounts, seed)
    places, amends, cancels = _mix_commands(engine, ids, n, seed)
    ended, finished = _count_ended(engine, n)
    tune_gc()
    start = time.perf_counter()
    for commands in (places, amends):
        for first in range(0, len(commands), batch):
            engine.submit(commands[first : first + batch])
        engine.wait_idle(600)
    for first in range(0, len(cancels), batch):
        engine.submit(cancels[first : first + batch])
    engine.wait_idle(600)  # the resting LIMITs are gone before the market moves
    for tick in _through_the_stops(engine, places):  # triggers every stop
        engine.on_tick(tick)
    finished.wait(600)
    elapsed = time.perf_counter() - start
    engine.stop()
    unwindowed = _market_only(n, accounts, batch, seed)
    # Each windowed profile in a process of its own: run after the mix in this one, the heap
    # the mix left (frozen by tune_gc, fragmented) slowed them by a fifth to a third.
    market = _orders_per_s_of(["--market-only"], n, accounts, seed)
    default = _orders_per_s_of([], n, accounts, seed)
    print(f"mix_orders: {n}")
    print(f"mix_amends: {len(amends)}")
    print(f"mix_cancels: {len(cancels)}")
    print(f"mix_ended: {ended[0]}")
    print(f"mix_elapsed_s: {elapsed:.2f}")
    print(f"mix_orders_per_s: {n / elapsed:.1f}")
    print(f"mix_commands_per_s: {(n + len(amends) + len(cancels)) / elapsed:.1f}")
    # Beside the mix, in the same run: the same number of MARKET IOC orders all submitted at
    # once, as the mix submits its commands (its peer figure); the same MARKET orders with at
    # most ``_WINDOW`` in flight; and the default profile (MARKET and marketable LIMIT orders,
    # windowed), the one issue 4's target of twice the NautilusTrader backtest's ~7,900 market
    # orders/s on this machine was set for.
    print(f"market_unwindowed_orders_per_s: {unwindowed:.1f}")
    print(f"market_orders_per_s: {market:.1f}")
    print(f"market_vs_nautilus_7900: {market / 7900:.2f}")
    print(f"default_profile_orders_per_s: {default:.1f}")
    print(f"default_profile_vs_nautilus_7900: {default / 7900:.2f}")


def _orders_per_s_of(flags: list[str], n: int, accounts: int, seed: int) -> float:
    """``orders_per_s`` of this benchmark's throughput profile run in a fresh process."""
    command = [sys.executable, __file__, "--orders", str(n), "--accounts", str(accounts)]
    command += ["--seed", str(seed), "--latency-window", "0", *flags]
    printed = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    for line in printed.splitlines():
        name, _, value = line.partition(": ")
        if name == "orders_per_s":
            return float(value)
    raise RuntimeError(f"no orders_per_s in {printed!r}")


def _market_only(n: int, accounts: int, batch: int, seed: int) -> float:
    """Orders per second of ``n`` MARKET orders, submitted as the mix submits its commands."""
    engine, ids = _engine(accounts, seed)
    orders = _as_market(_orders(engine, ids, n, seed))
    _, finished = _count_ended(engine, n)
    start = time.perf_counter()
    for first in range(0, n, batch):
        engine.submit(orders[first : first + batch])
    finished.wait(600)
    elapsed = time.perf_counter() - start
    engine.stop()
    return n / elapsed


def main() -> None:
    """Parse the arguments and run one mode."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument(
        "--resting",
        type=int,
        default=None,
        help="hold this many resting limit orders (e.g. 1000000) instead",
    )
    parser.add_argument(
        "--mix",
        action="store_true",
        help="the mixed profile (limits, amends, cancels, stops) beside MARKET orders instead",
    )
    parser.add_argument("--accounts", type=int, default=16)
    parser.add_argument("--window", type=int, default=_WINDOW, help="orders in flight at most")
    parser.add_argument("--batch", type=int, default=500, help="orders per submit")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--latency-window",
        type=int,
        default=100,
        help="orders in flight in the latency run (0: skip it)",
    )
    parser.add_argument("--latency-orders", type=int, default=20_000)
    parser.add_argument(
        "--market-only", action="store_true", help="every order a MARKET IOC (throughput mode)"
    )
    args = parser.parse_args()
    if args.mix:
        mix(args.orders, args.accounts, args.batch, args.seed)
    elif args.resting is not None:
        resting(args.resting, args.accounts, max(args.batch, 1000), args.seed)
    else:
        throughput(
            args.orders,
            args.accounts,
            args.window,
            args.batch,
            args.seed,
            market_only=args.market_only,
        )
        if args.latency_window > 0:
            latency(args.latency_orders, args.accounts, args.latency_window, args.seed)


if __name__ == "__main__":
    main()
