"""How long the ingestion's fetches wait at the broker: gather while orders flow, wake on the
first one when they do not.

Under a steady flow a fetch that waits a few milliseconds for more bytes turns many arrivals into
one hand-over, barrier and commit (``ingest_fetch_min_bytes``, ``ingest_fetch_max_wait_ms``).
Idle, the same setting is a fetch every few milliseconds that finds nothing: measured on this
machine, an idle ``oms serve`` used 0.15 cores and Kafka 0.13 fetching every 5 ms, against 0.04
and 0.03 with aiokafka's defaults (1 byte, 500 ms). So the ingestion *gathers* while fetches bring
orders and *waits* (1 byte: the broker answers at the first record, no later) once a ``getmany``
has come back empty (it waited 200 ms for anything). A first order after a quiet spell is fetched
at once, with no gathering wait.

aiokafka takes both figures when it builds each fetch request (``Fetcher._fetch_min_bytes`` and
``_fetch_max_wait_ms``, read per request in 0.12-0.14) and has no public way to change them on a
running consumer; ``FetchPacing`` sets those two attributes, and refuses a consumer without them
rather than silently doing nothing (``tests/integration/stream/test_fetch_pacing.py`` checks the
installed aiokafka).
"""

from __future__ import annotations

from typing import Any

from oms.domain.errors import DomainError

# aiokafka's own defaults: the broker answers as soon as one record is there, else after 500 ms.
IDLE_MIN_BYTES = 1
IDLE_MAX_WAIT_MS = 500


class FetchPacingUnsupported(DomainError):
    """The installed aiokafka builds its fetches from other attributes than this module sets."""

    code = "FETCH_PACING_UNSUPPORTED"


class FetchPacing:
    """Switches a running consumer's fetches between gathering and waiting."""

    def __init__(self, consumer: Any, *, min_bytes: int, max_wait_ms: int) -> None:
        fetcher = getattr(consumer, "_fetcher", None)
        if fetcher is None or not all(
            isinstance(getattr(fetcher, name, None), int)
            for name in ("_fetch_min_bytes", "_fetch_max_wait_ms")
        ):
            raise FetchPacingUnsupported(
                "this aiokafka's fetcher has no _fetch_min_bytes/_fetch_max_wait_ms to pace"
            )
        self._fetcher = fetcher
        self._gather = (min_bytes, max_wait_ms)
        self.gathering = False
        self.wait()

    def fetched(self, partitions: int) -> None:
        """A ``getmany`` came back with records of ``partitions`` partitions (0: none): gather
        while records come, wait once they do not."""
        if partitions and not self.gathering:
            self._set(*self._gather)
            self.gathering = True
        elif not partitions and self.gathering:
            self.wait()

    def wait(self) -> None:
        """Fetches answer at the first record (or after ``IDLE_MAX_WAIT_MS``)."""
        self._set(IDLE_MIN_BYTES, IDLE_MAX_WAIT_MS)
        self.gathering = False

    def _set(self, min_bytes: int, max_wait_ms: int) -> None:
        self._fetcher._fetch_min_bytes = min_bytes
        self._fetcher._fetch_max_wait_ms = max_wait_ms
