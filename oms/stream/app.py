"""The faust app: built from the settings, run inside the service's own asyncio loop.

``oms serve`` does not run a faust worker: it builds the app here and ``await app.start()`` in
its loop, next to aiohttp, and ``await app.stop()`` on the way out (never from inside an agent:
that hangs the shutdown). Topics are created before it starts (``oms.stream.topics``), because
auto-creation is off and faust does not create an agent's source topic.
"""

from __future__ import annotations

import faust

from oms.config import Settings
from oms.stream.security import kafka_ssl_context

# How often faust commits the offsets its streams have acked. Acks (and so commits) only ever
# cover records whose effects are durable (see oms.stream.agents), so committing often is safe
# and keeps what a crash replays small.
COMMIT_INTERVAL_S = 1.0


def build_app(
    settings: Settings,
    *,
    group_id: str | None = None,
    commit_interval_s: float = COMMIT_INTERVAL_S,
) -> faust.App:
    """A faust app in the shared consumer group (``Settings.kafka_group_id`` by default).

    Web server off, no topic declaration (oms creates topics), tables in memory (oms keeps no
    faust table), and the group's session timeout from the settings: that is how long a dead
    replica's partitions wait before moving.
    """
    return faust.App(
        group_id or settings.kafka_group_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=kafka_ssl_context(settings),  # None: plaintext
        broker_client_id=settings.kafka_client_id,
        broker_session_timeout=settings.kafka_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.kafka_session_timeout_s / 3),
        broker_commit_interval=commit_interval_s,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        topic_allow_declare=False,
        topic_disable_leader=True,
        store="memory://",
        # Wait for every record in flight to be acked (after its durability barrier) before
        # committing on a rebalance or a stop, instead of dropping the work in flight.
        stream_wait_empty=True,
        producer_acks=-1,
        autodiscover=False,
    )
