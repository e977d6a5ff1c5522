"""Environments (dev, prod, cost): one typed profile each, read from one TOML file.

The profile is the only input of the stacks: choosing an environment is choosing a profile
(``ENV=prod``), and changing one is editing ``environments.toml`` (or pointing ``INFRA_CONFIG``
at another file of the same shape), never the code. The loader is strict: an unknown key, a
missing key or a value of the wrong type stops the synth with the key's dotted name.
"""

from __future__ import annotations

import tomllib
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any

# The design fixes these; they are not per environment.
REPLICATION_FACTOR = 3  # every topic, on MSK and on the self-hosted cluster
MIN_INSYNC_REPLICAS = 2  # with acks=all a write survives the loss of one broker
CONSUMER_GROUP = "oms"  # the app's OMS_KAFKA_GROUP_ID; KEDA reads the lag of this group
ORDERS_TOPIC = "orders"
HTTP_PORT = 8080

# Memory of the DocumentDB instance classes a profile may name (GiB): the freeable-memory alarm
# fires below a share of it. Add a class here to use it.
DOCDB_INSTANCE_MEMORY_GIB = {
    "db.t3.medium": 4,
    "db.t4g.medium": 4,
    "db.r5.large": 16,
    "db.r6g.large": 16,
    "db.r5.xlarge": 32,
    "db.r6g.xlarge": 32,
    "db.r5.2xlarge": 64,
    "db.r6g.2xlarge": 64,
    "db.r5.4xlarge": 128,
    "db.r6g.4xlarge": 128,
}

NAT_MODES = ("single-gateway", "gateway-per-az", "instance")
KAFKA_MODES = ("msk", "self-hosted")
CAPACITY_TYPES = ("ON_DEMAND", "SPOT")
BACKEND_KINDS = ("local", "s3")


class ProfileError(ValueError):
    """The environments file is missing, malformed, or describes an impossible environment."""


@dataclass(frozen=True, slots=True)
class Network:
    """VPC layout and how private subnets reach the internet."""

    vpc_cidr: str
    availability_zones: tuple[str, ...]
    nat: str
    nat_instance_type: str
    interface_endpoints: bool


@dataclass(frozen=True, slots=True)
class Eks:
    """The cluster and its managed node group."""

    kubernetes_version: str
    api_public_cidrs: tuple[str, ...]
    node_instance_types: tuple[str, ...]
    node_capacity: str
    nodes_min: int
    nodes_desired: int
    nodes_max: int
    node_disk_gib: int


@dataclass(frozen=True, slots=True)
class Kafka:
    """Kafka: MSK or self-hosted, and the one partition count that sizes the app."""

    mode: str
    version: str
    brokers: int
    broker_instance_type: str
    broker_memory: str
    broker_volume_gib: int
    broker_volume_max_gib: int  # MSK storage autoscaling grows each broker's volume up to this
    orders_partitions: int


@dataclass(frozen=True, slots=True)
class Redis:
    """ElastiCache for Redis."""

    node_type: str
    nodes: int


@dataclass(frozen=True, slots=True)
class DocumentDb:
    """Amazon DocumentDB, the MongoDB-compatible system of record."""

    instance_class: str
    instances: int


@dataclass(frozen=True, slots=True)
class Edge:
    """The public side: ALB, its web application firewall, and the static-frontend bucket."""

    certificate_arn: str
    https_only: bool  # refuse to synthesize without a certificate (prod)
    waf_requests_per_minute_per_ip: int  # the WAF's rate-based rule blocks an address above it


@dataclass(frozen=True, slots=True)
class App:
    """The oms Deployment and its autoscaling."""

    image_tag: str
    min_replicas: int
    lag_threshold: int
    node_port: int
    orders_per_s: int  # the rate one replica is sized for: its CPU request (oms_infra.sizing)
    memory_request: str
    memory_limit: str


@dataclass(frozen=True, slots=True)
class Operations:
    """Retention, protection and key lifetimes."""

    backup_retention_days: int
    log_retention_days: int
    kms_deletion_window_days: int
    deletion_protection: bool
    alarm_email: str  # subscribed to the alarms' SNS topic; "" = subscribe someone later


@dataclass(frozen=True, slots=True)
class Backend:
    """Where Terraform keeps the state of each stack (never in the repository)."""

    kind: str
    bucket: str
    key_prefix: str
    region: str
    kms_key_id: str


@dataclass(frozen=True, slots=True)
class Profile:
    """Everything that differs between environments."""

    name: str
    region: str
    network: Network
    eks: Eks
    kafka: Kafka
    redis: Redis
    documentdb: DocumentDb
    edge: Edge
    app: App
    operations: Operations
    backend: Backend

    @property
    def prefix(self) -> str:
        """The name every resource of this environment starts with: ``oms-dev``."""
        return f"oms-{self.name}"


def load_profile(env: str, path: Path, overrides: Mapping[str, Any] | None = None) -> Profile:
    """Read environment ``env`` from the TOML file at ``path`` and check that it can exist.

    ``overrides`` replaces values by dotted name (``{"edge.certificate_arn": "arn:..."}``)
    before the checks, as if the file said so: the same types and rules apply.
    """
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"cannot read {path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{path} is not valid TOML: {exc}") from exc
    if env not in document:
        known = ", ".join(sorted(document))
        raise ProfileError(f"{path} has no environment {env!r} (it has: {known})")
    raw = document[env]
    if not isinstance(raw, dict):
        raise ProfileError(f"{env} must be a table")
    for dotted, value in (overrides or {}).items():
        *tables, key = dotted.split(".")
        target = raw
        for table in tables:
            target = target.setdefault(table, {})
            if not isinstance(target, dict):
                raise ProfileError(f"{env}.{dotted}: {table} is not a table")
        target[key] = value
    profile: Profile = _build(Profile, {"name": env, **raw}, env)
    _check(profile)
    return profile


def environments(path: Path) -> tuple[str, ...]:
    """The environment names the file defines, in file order."""
    return tuple(tomllib.loads(path.read_text(encoding="utf-8")))


def _build(cls: type[Any], raw: dict[str, Any], where: str) -> Any:
    """Build dataclass ``cls`` from ``raw``, refusing unknown, missing and mistyped keys."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise ProfileError(f"{where}: unknown key(s) {', '.join(unknown)}")
    missing = sorted(names - set(raw))
    if missing:
        raise ProfileError(f"{where}: missing key(s) {', '.join(missing)}")
    return cls(**{name: _value(hints[name], raw[name], f"{where}.{name}") for name in raw})


def _value(kind: Any, value: Any, where: str) -> Any:
    if is_dataclass(kind):
        if not isinstance(value, dict):
            raise ProfileError(f"{where} must be a table")
        return _build(kind, value, where)  # type: ignore[arg-type]
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ProfileError(f"{where} must be a list of strings")
        return tuple(value)
    # bool is a subclass of int in Python, not in TOML: compare the types exactly
    if type(value) is not kind:
        raise ProfileError(f"{where} must be a {kind.__name__}, not {value!r}")
    return value


def _check(p: Profile) -> None:
    """Refuse profiles AWS or the design would refuse later, with the reason."""
    azs = len(p.network.availability_zones)
    k, msk = p.kafka, p.kafka.mode == "msk"
    rules: list[tuple[bool, str]] = [
        (2 <= azs <= 3, "network.availability_zones: give 2 or 3 zones"),
        (p.network.nat in NAT_MODES, f"network.nat must be one of {', '.join(NAT_MODES)}"),
        (
            p.eks.node_capacity in CAPACITY_TYPES,
            f"eks.node_capacity must be one of {', '.join(CAPACITY_TYPES)}",
        ),
        (
            1 <= p.eks.nodes_min <= p.eks.nodes_desired <= p.eks.nodes_max,
            "eks: need 1 <= nodes_min <= nodes_desired <= nodes_max",
        ),
        (k.mode in KAFKA_MODES, f"kafka.mode must be one of {', '.join(KAFKA_MODES)}"),
        (
            k.brokers >= REPLICATION_FACTOR,
            f"kafka.brokers: replication factor {REPLICATION_FACTOR} needs as many",
        ),
        (
            not msk or k.brokers % azs == 0,
            "kafka.brokers: MSK needs a multiple of the number of zones",
        ),
        (
            not msk or k.broker_instance_type.startswith("kafka."),
            "kafka.broker_instance_type: an MSK type (kafka.*) is needed for msk",
        ),
        (k.orders_partitions >= 1, "kafka.orders_partitions must be at least 1"),
        (
            1 <= p.app.min_replicas <= k.orders_partitions,
            "app.min_replicas must be between 1 and kafka.orders_partitions",
        ),
        (
            30000 <= p.app.node_port <= 32767,
            "app.node_port must be in the NodePort range 30000-32767",
        ),
        (p.app.orders_per_s >= 1, "app.orders_per_s must be at least 1"),
        (
            not p.edge.https_only or p.edge.certificate_arn.startswith("arn:"),
            "edge.https_only: this environment serves HTTPS only, set edge.certificate_arn "
            "to an ACM certificate ARN",
        ),
        (
            10 <= p.edge.waf_requests_per_minute_per_ip <= 2_000_000_000,
            "edge.waf_requests_per_minute_per_ip must be at least 10 (the WAF's minimum)",
        ),
        (
            k.broker_volume_gib <= k.broker_volume_max_gib <= 16384,
            "kafka.broker_volume_max_gib must be between broker_volume_gib and 16384",
        ),
        (
            p.documentdb.instance_class in DOCDB_INSTANCE_MEMORY_GIB,
            "documentdb.instance_class: one of "
            + ", ".join(DOCDB_INSTANCE_MEMORY_GIB)
            + " (profile.DOCDB_INSTANCE_MEMORY_GIB)",
        ),
        (
            p.redis.nodes >= 1 and p.documentdb.instances >= 1,
            "redis.nodes and documentdb.instances must be at least 1",
        ),
        (
            1 <= p.operations.backup_retention_days <= 35,
            "operations.backup_retention_days must be 1-35",
        ),
        (
            7 <= p.operations.kms_deletion_window_days <= 30,
            "operations.kms_deletion_window_days must be 7-30",
        ),
        (
            p.backend.kind in BACKEND_KINDS,
            f"backend.kind must be one of {', '.join(BACKEND_KINDS)}",
        ),
        (
            p.backend.kind != "s3" or bool(p.backend.bucket and p.backend.region),
            "backend: kind s3 needs bucket and region",
        ),
    ]
    problems = [message for ok, message in rules if not ok]
    if problems:
        raise ProfileError(f"environment {p.name}: " + "; ".join(problems))
