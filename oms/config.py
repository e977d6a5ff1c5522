"""Settings, read once from the environment: the one place that knows about ``OMS_*`` variables.

Every default points at the local servers that ``devenv up`` starts, so a fresh clone runs with
no configuration at all. Nothing else in the project reads ``os.environ``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Any

DEFAULT_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")


class SettingsError(ValueError):
    """An environment variable holds a value the settings cannot use."""

    code = "INVALID_SETTING"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the process needs to know about where it runs and how big it is."""

    # HTTP API
    http_host: str = "127.0.0.1"
    http_port: int = 8080
    # Slow and many clients: a request head must arrive within this many seconds of the
    # connection opening (or of the previous answer: also the idle keep-alive bound), a body
    # within this many seconds of its head; connections beyond the cap are answered 503.
    http_header_timeout_s: float = 10.0
    http_body_timeout_s: float = 10.0
    http_max_connections: int = 1024
    # Kafka
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_client_id: str = "oms"
    kafka_group_id: str = "oms"
    orders_partitions: int = 6
    executions_partitions: int = 6
    prices_partitions: int = 3
    events_partitions: int = 6
    topic_replication_factor: int = 1
    # Appended to every topic name ("orders-<suffix>"): isolates test runs on a shared broker.
    topic_suffix: str = ""
    kafka_session_timeout_s: float = 10.0
    # PLAINTEXT locally; SSL for MSK and the self-hosted cluster in AWS (TLS only there).
    kafka_security_protocol: str = "PLAINTEXT"
    # CA bundle for a private Kafka CA; empty means the system's trusted CAs (enough for MSK).
    kafka_ssl_cafile: str = ""
    # Who the client is, with security protocol SASL_SSL: "" (none), SCRAM-SHA-256 or
    # SCRAM-SHA-512 with the username and password below (the self-hosted cluster), or
    # AWS_MSK_IAM (MSK with IAM access control: the pod's own AWS identity signs a token for
    # kafka_aws_region; needs the aws-msk-iam-sasl-signer-python package).
    kafka_sasl_mechanism: str = ""
    kafka_sasl_username: str = ""
    kafka_sasl_password: str = ""
    kafka_aws_region: str = ""
    # MongoDB (FerretDB locally, DocumentDB in AWS)
    mongo_url: str = "mongodb://127.0.0.1:27027/"
    mongo_database: str = "oms"
    # Finished orders the store keeps in memory (older ones are read back from MongoDB).
    keep_terminal_orders: int = 100_000
    # How long a read of MongoDB may take before it answers StoreUnavailable (a 503 naming
    # MongoDB): below dependency_timeout_s, so the store's reason wins over the door's timeout.
    store_read_timeout_s: float = 1.5
    # Redis
    redis_url: str = "redis://127.0.0.1:16379/0"
    idempotency_ttl_s: int = 24 * 3600
    order_cache_ttl_s: int = 3600
    # Engine
    symbols: tuple[str, ...] = DEFAULT_SYMBOLS
    max_live_order_actors: int = 100_000
    simulated_feed: bool = True
    feed_seed: int = 7
    fee_rate: Decimal = Decimal("0.001")
    # Operations
    log_level: str = "INFO"
    # "json": one JSON object per line (the container's default, set in the Dockerfile);
    # "text": one readable line per record, for a terminal.
    log_format: str = "text"
    # One log line per HTTP request (logger ``oms.access``); false keeps only its warnings.
    access_log: bool = True
    # This process's name on every log line and in /metrics' oms_info; empty: the host name
    # (the pod's name in Kubernetes).
    replica: str = ""
    # A log record of the same kind (logger, level, template) repeats at most once per window.
    log_repeat_window_s: float = 10.0
    # /health fails when the engine thread has not run a heartbeat for this long.
    engine_stall_s: float = 30.0
    # Recovery: how often the checkpoint of each owned partition is written. A restart reads
    # the newest checkpoint and what was written after it (``oms.store.recovery_log``), so this
    # bounds its work: at 2,000 orders/s, 10 s is 20,000 orders' documents.
    checkpoint_interval_s: float = 10.0
    # Tests only: the event sink waits this long before handing each chunk of events to Kafka,
    # so that a crash can be placed between an order's durable write and its publication.
    event_sink_delay_s: float = 0.0
    # SIGTERM: how long a clean stop may take before the process exits regardless (keep it
    # below the orchestrator's grace period; Kubernetes' default is 30 s).
    shutdown_timeout_s: float = 20.0
    # Fault injection for the fault suite (tests/faults): the n-th order's actor raises halfway
    # through its first turn. 0 (the default) never; never set it in production.
    fault_fail_order_at: int = 0
    # Order entry under faults. A request waits at most this long on Redis, Kafka or the engine
    # before it answers 503 (problem+json, DEPENDENCY_UNAVAILABLE) with Retry-After: a POST
    # that cannot reach them fails fast instead of hanging for the whole outage.
    dependency_timeout_s: float = 2.0
    retry_after_s: int = 2
    # One Redis connect or reply; a failed one is retried this many times (a pooled connection
    # that died with a Redis restart is replaced on the retry).
    redis_timeout_s: float = 1.0
    redis_retries: int = 1
    # Every send of the Kafka command bus (REST, tools, account changes) is acknowledged within
    # this or raises ``KafkaTimeoutError``: aiokafka itself waits for a broker for as long as
    # its request timeout allows, per step.
    kafka_send_timeout_s: float = 5.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``OMS_<FIELD>`` variables (upper case), defaults elsewhere."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"OMS_{f.name.upper()}")
            if raw is None:
                continue
            values[f.name] = _parse(f.name, f.type, raw)
            allowed = _CHOICES.get(f.name)
            if allowed is not None and values[f.name] not in allowed:
                raise SettingsError(
                    f"OMS_{f.name.upper()}={raw!r} is not one of {', '.join(allowed)}"
                )
        return cls(**values)

    def replica_name(self) -> str:
        """This process's name in logs and metrics: ``replica``, else the host's name."""
        return self.replica or socket.gethostname()


_CHOICES: dict[str, tuple[str, ...]] = {"log_format": ("json", "text")}


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


def _parse_bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered not in _TRUE | _FALSE:
        raise ValueError(raw)
    return lowered in _TRUE


def _parse(name: str, type_name: object, raw: str) -> Any:
    """Turn one variable's text into the field's type, or say which variable is wrong."""
    kind = str(type_name)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _parse_bool(raw)
        if kind == "Decimal":
            return Decimal(raw)
        if kind.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except (ValueError, ArithmeticError) as exc:
        raise SettingsError(f"OMS_{name.upper()}={raw!r} is not a valid {kind}") from exc
    return raw
