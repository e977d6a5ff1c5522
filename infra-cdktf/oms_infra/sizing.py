"""Numbers derived from the profile: the app's CPU request, the Kafka topics and their retention.

CPU. The service's CPU per order, measured with ``bench/e2e.py`` on a quiet machine
(``cpu_us_per_order_service``): 484-687 us over REST (687 at c5e48fb, 484-654 at 85365f3; most
of it the HTTP door) and 150-175 us over Kafka (174 at c5e48fb). A replica is sized for
``app.orders_per_s`` orders a second all arriving over REST, the dearer path, at 700 us each
(the highest REST figure, rounded up): rate x 0.7 millicores, plus a baseline for the event
loop, the consumers, heartbeats and metrics with no orders at all, rounded up to 50m. So 150
orders/s asks for 250m and 400 orders/s for 400m; KEDA adds replicas on lag before one is past
its rate. There is no CPU limit (throttling stalls the event loop and the heartbeats, and a
replica that misses its heartbeats loses its partitions): a busy replica may burst.

Topics. ``oms topics`` creates them from the ConfigMap; their names and partition counts are
repeated here because the access rules (IAM policies, Kafka ACLs) and the retention name them,
and a test checks them against the app's own ``topic_specs``.

Retention. Time alone (seven days) does not bound disk: a busy week could fill the brokers. Each
partition also keeps at most ``retention_bytes``, sized so that if every partition a broker holds
were full the topics would use ``TOPIC_SHARE_OF_DISK`` of its volume (a partition holds up to
its retention plus one open segment). Storage autoscaling (MSK) grows the volume past that only
for what retention does not cover; the disk alarm fires above both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from oms_infra.profile import REPLICATION_FACTOR, Profile

SERVICE_CPU_US_PER_ORDER = 700  # REST, measured 484-687 us; Kafka 150-175 us
BASELINE_MILLICORES = 100
PRICES_PARTITIONS = 3  # prices are keyed by symbol: a handful of symbols, three partitions
TOPIC_SHARE_OF_DISK = 0.6
MAX_SEGMENT_BYTES = 1 << 30  # Kafka's default segment size
GIB = 1 << 30


def cpu_request(profile: Profile) -> str:
    """The app container's CPU request, in millicores, for ``app.orders_per_s``."""
    orders = profile.app.orders_per_s * SERVICE_CPU_US_PER_ORDER / 1000  # millicores
    return f"{math.ceil((orders + BASELINE_MILLICORES) / 50) * 50}m"


def topic_partitions(profile: Profile) -> dict[str, int]:
    """Every topic the app uses and its partition count (as ``oms topics`` creates them)."""
    partitions = profile.kafka.orders_partitions
    sources = {"orders": partitions, "executions": partitions, "prices": PRICES_PARTITIONS}
    outputs = {"order-events": partitions, "risk-events": partitions}
    dead_letters = {f"{name}.dlq": count for name, count in sources.items()}
    return sources | outputs | dead_letters


@dataclass(frozen=True, slots=True)
class Retention:
    """Per-partition byte bounds of the brokers (``log.retention.bytes``, ``log.segment.bytes``)."""

    retention_bytes: int
    segment_bytes: int
    partitions_per_broker: int


def retention(profile: Profile) -> Retention:
    """Byte retention that keeps the topics within their share of each broker's volume."""
    kafka = profile.kafka
    replicas = sum(topic_partitions(profile).values()) * REPLICATION_FACTOR
    per_broker = math.ceil(replicas / kafka.brokers)
    budget = int(kafka.broker_volume_gib * GIB * TOPIC_SHARE_OF_DISK) // per_broker
    segment = min(MAX_SEGMENT_BYTES, budget // 4)
    return Retention(budget - segment, segment, per_broker)
