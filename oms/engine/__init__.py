"""The engine: the application service the stream, API and service layers use.

- ``application.py``: ``Engine``, the async use cases (place, cancel, reads, accounts, risk,
  market data, recovery, the durability barrier), answering values on the caller's loop.
- ``core.py``: ``EngineCore``, the actors wired on one dispatcher thread, answering pykka
  futures (benchmarks and tests drive it without an event loop).
- ``recovery.py``: rebuilding a replica's state from the store through the actors' messages.
- ``reconciliation.py``: the reconciliation driver (our orders and fills beside the venue's,
  through ``oms.venue.reconcile``'s rules).
- ``ports.py``: the ports the adapters implement; ``aio.py``: pykka futures into asyncio.

Pykka futures never leave this package and ``oms.actors``: import-linter forbids ``pykka`` and
``oms.engine.aio``/``core`` to the layers above.
"""

from oms.engine.application import Engine
from oms.engine.recovery import RecoverySummary

__all__ = ["Engine", "RecoverySummary"]
