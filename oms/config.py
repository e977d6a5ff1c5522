"""Settings, read once from the environment: the one place that knows about ``OMS_*`` variables.

Every default points at the local servers that ``devenv up`` starts, so a fresh clone runs with
no configuration at all. Nothing else in the project reads ``os.environ``.

pydantic-settings turns each variable's text into its field's type (an int, a float, a bool, a
``Decimal``, a tuple from comma-separated text); a value it cannot use stops the process with a
``SettingsError`` naming the variable, instead of passing through as a string.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from decimal import Decimal
from ipaddress import IPv4Network, IPv6Network
from typing import Annotated, Any, Literal, get_args, get_origin

import orjson
from pydantic import (
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

DEFAULT_SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD")
ASYMMETRIC_JWT_ALGORITHMS = frozenset(
    ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
)


class SettingsError(ValueError):
    """An environment variable holds a value the settings cannot use."""

    code = "INVALID_SETTING"


def _split_commas(value: object) -> object:
    """``"BTC-USD, ETH-USD"`` -> ``("BTC-USD", "ETH-USD")``; a tuple given in code passes as is."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A tuple of text from an environment variable: comma-separated, blanks around items dropped.
CommaSeparated = Annotated[tuple[str, ...], BeforeValidator(_split_commas)]
# Networks (CIDRs, or single addresses), comma-separated; one that does not parse stops oms.
Networks = Annotated[tuple[IPv4Network | IPv6Network, ...], BeforeValidator(_split_commas)]


def _symbol_pairs(value: object) -> object:
    """``"BTC-USD=BTCUSDT, ETH-USD=ETHUSDT"`` -> ``(("BTC-USD", "BTCUSDT"), ...)``; a mapping
    given in code becomes its pairs. A tuple (hashable, as every setting is) passes as is."""
    if isinstance(value, Mapping):
        return tuple((str(ours), str(theirs).upper()) for ours, theirs in value.items())
    if not isinstance(value, str):
        return value
    pairs: dict[str, str] = {}
    for item in value.split(","):
        if not item.strip():
            continue
        ours, sep, theirs = item.partition("=")
        if not sep or not ours.strip() or not theirs.strip():
            raise ValueError(f"{item.strip()!r} is not OUR-SYMBOL=EXCHANGESYMBOL")
        pairs[ours.strip()] = theirs.strip().upper()
    return tuple(pairs.items())


# Our instrument and the exchange's symbol, from ``BTC-USD=BTCUSDT,ETH-USD=ETHUSDT``.
SymbolMap = Annotated[tuple[tuple[str, str], ...], BeforeValidator(_symbol_pairs)]


class Settings(BaseSettings):
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
    # HTTP door processes (README "Speed: door processes"): 0 serves HTTP in the engine's own
    # process, as always; N >= 1 starts N door processes sharing http_port (SO_REUSEPORT),
    # each placing orders itself and forwarding the rest to the engine process, which then
    # listens only on http_internal_port (0: http_port + 1). Door i serves its own /metrics on
    # door_metrics_port + i (0: http_internal_port + 1 + i).
    http_workers: int = Field(default=0, ge=0, le=64)
    http_internal_port: int = 0
    door_metrics_port: int = 0
    # Set by ``oms serve`` for the doors it starts, never by hand: the door's number and the
    # secret that signs its hop to its engine process (made afresh at every start).
    door_index: int = -1
    door_token: str = ""
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
    # Failover after a crash (SIGKILL, a lost node): a replica that stops heartbeating keeps its
    # partitions until this expires, then the group rebalances them onto the others. 6 s is the
    # lowest a broker accepts by default (its ``group.min.session.timeout.ms``, MSK's too); to
    # go lower, lower that on the broker first. A clean stop (SIGTERM) does not wait for it: the
    # replica leaves the group. README "Several replicas" has the measured hand-off times.
    kafka_session_timeout_s: float = 6.0
    # How often the consumer heartbeats: also how soon a surviving replica hears that the group
    # is rebalancing (the coordinator answers a heartbeat with "rebalance in progress"), so it
    # bounds part of every hand-off. Capped at a third of the session timeout.
    kafka_heartbeat_interval_s: float = 0.5
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
    # Rate limits (oms.api.rate_limits), shared by every replica through Redis: requests a
    # second per credential (times its role's share: admin and trader 1, risk and viewer 1/4)
    # and per client address, each after a burst of up to ``*_burst`` at once; 0 switches a
    # limit off. High enough for the load tools (the REST door of one replica takes ~900/s).
    rate_limit_key_per_s: float = 1000.0
    rate_limit_key_burst: int = 2000
    rate_limit_ip_per_s: float = 2000.0
    rate_limit_ip_burst: int = 4000
    # Proxies whose X-Forwarded-For is believed (the ALB's subnets in AWS): a request from one
    # of them is from the right-most forwarded address that is not a proxy (oms.api.
    # client_address), for the rate limits per address and the audit. Empty: the peer address.
    trusted_proxies: Networks = ()
    # Several replicas (README "Several replicas"): reads of an account another replica owns
    # are forwarded to it over an internal hop signed with this shared secret (HMAC-SHA256 of
    # the request and the caller). Empty: no hop is trusted or made, and such a read answers
    # 503 OWNER_UNAVAILABLE. Every replica of a deployment needs the same value.
    internal_token: str = ""
    # How the other replicas reach this one (``http://10.0.3.7:8080``); empty: http://host:port
    # of the listener (the host's address when it listens on every address).
    advertise_url: str = ""
    # The longest a forwarded read waits for the owner before its 503 OWNER_UNAVAILABLE.
    forward_timeout_s: float = 1.0
    # The owner map in Redis: each replica writes its partitions every heartbeat; an entry not
    # refreshed within the TTL (a killed replica's) expires.
    owner_heartbeat_s: float = 1.0
    owner_ttl_s: float = 4.0
    # Engine
    symbols: CommaSeparated = DEFAULT_SYMBOLS
    max_live_order_actors: int = 100_000
    # False: this replica publishes no market data at all and only reads ``prices``.
    simulated_feed: bool = True
    feed_seed: int = 7
    # Market data (README "Market data"): where the ticks on ``prices`` come from. "simulated":
    # the seeded random walk; "exchange": Binance spot's public WebSocket streams (diff depth
    # and trades) at market_data_url, resynced from its REST snapshot at market_data_rest_url.
    market_data: Literal["simulated", "exchange"] = "simulated"
    market_data_url: str = "wss://stream.binance.com:9443"
    market_data_rest_url: str = "https://api.binance.com"
    # Our symbol=the exchange's, comma-separated; an instrument left out is not fed.
    market_data_symbols: SymbolMap = (
        ("BTC-USD", "BTCUSDT"),
        ("ETH-USD", "ETHUSDT"),
        ("SOL-USD", "SOLUSDT"),
    )
    # A symbol with no update for this long stops taking MARKET orders (MARKET_DATA_STALE)
    # until ticks come back; 0 switches the check off.
    market_data_stale_s: float = 10.0
    # One publisher per symbol across the replicas: a Redis lease per symbol held this long,
    # renewed every third of it; a replica that dies loses its symbols within it.
    market_data_lease_s: float = 3.0
    # Reconnecting the exchange's WebSocket: the pause doubles from the first figure to the
    # second; a connection that says nothing for market_data_idle_s is dropped and made again.
    market_data_reconnect_initial_s: float = 0.5
    market_data_reconnect_max_s: float = 10.0
    market_data_idle_s: float = 30.0
    fee_rate: Decimal = Decimal("0.001")
    # The web app's built files (``web/dist``: ``make setup`` builds them), served at ``/``.
    # Empty: the checkout's ``web/dist`` beside the ``oms`` package; a relative path is taken
    # from the checkout too; the container sets its own (the package is installed elsewhere).
    web_dist_dir: str = ""
    # Venue (README "Trading on an exchange"): where accepted orders trade. "simulated" (the
    # default: the in-process matcher, no exchange needed) or "ccxt": the exchange
    # ``venue_exchange`` (a ccxt id) through ccxt, its orders named by our order ids.
    venue: Literal["simulated", "ccxt"] = "simulated"
    venue_exchange: str = "binance"
    # The exchange's API key and secret: here, or in ``venue_secrets_file`` (a JSON object
    # ``{"api_key": ..., "api_secret": ...}``, which wins when set). SecretStr keeps them out of
    # every repr and log line.
    venue_api_key: SecretStr = SecretStr("")
    venue_api_secret: SecretStr = SecretStr("")
    venue_secrets_file: str = ""
    # The exchange's sandbox (ccxt's ``set_sandbox_mode``: Binance's spot testnet).
    venue_sandbox: bool = False
    # scheme://host[:port] replacing the exchange's API origin (ccxt's urls['api']): a proxy,
    # or the fake exchange of the tests.
    venue_url: str = ""
    # One venue request's time limit: past it the outcome is unknown and the order IN_DOUBT.
    venue_timeout_s: float = 10.0
    # An IN_DOUBT order is queried (by client order id) this long after the doubt, then again
    # each time the query itself fails: longer than the request's validity window, so a "no
    # such order" is final (Binance refuses a request older than its recvWindow, 10 s by ccxt's
    # default: so is this).
    venue_query_delay_s: float = 10.0
    # Operations
    log_level: str = "INFO"
    # "json": one JSON object per line (the container's default, set in the Dockerfile);
    # "text": one readable line per record, for a terminal.
    log_format: Literal["json", "text"] = "text"
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
    # Firm-wide caps (``oms.engine.global_gate``): how often each replica reads them from Redis
    # again (a cap set on one replica binds every other one within this).
    global_limits_refresh_s: float = 1.0
    # Reconciliation with a network venue (README "Reconciliation"): a run at start, after each
    # take-over and every interval; an in-doubt order the venue does not know is rejected only
    # once the submit window has passed since it was sent (a late submit may still land); the
    # first run after a start reads the venue's trades from this far back.
    reconcile_interval_s: float = Field(default=30.0, gt=0)
    reconcile_submit_window_s: float = Field(default=30.0, ge=0)
    reconcile_lookback_s: float = Field(default=86_400.0, ge=0)
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
    # its request timeout allows, per step. A placement's send is bounded by its own deadline
    # instead (dependency_timeout_s: one timer for its claim and send, oms.api.outages.Waits).
    kafka_send_timeout_s: float = 5.0
    # Speed levers (issue 19; README "Speed levers" says what each does and what it costs). Each
    # default is the side expected to win; bench/levers.sh measures both sides of each.
    # The event loop of `oms serve`, and of the store's own thread: uvloop (libuv, C) or the
    # standard library's. Either gives the same behaviour; only the cost of a loop turn differs.
    event_loop: Literal["uvloop", "asyncio"] = "uvloop"
    # redis-py's reply parser and command packer: hiredis (C; redis-py parses with it whenever it
    # is installed, and oms packs with it: oms.store.redis_store.HiredisPackingConnection) or its
    # own pure-Python one.
    redis_parser: Literal["hiredis", "python"] = "hiredis"
    # sys.setswitchinterval: how long a thread keeps the GIL while another waits for it. With
    # engine_loop="own" the event loop and the engine's dispatcher are two busy threads of one
    # process: at Python's 5 ms a request that arrives while the dispatcher runs waits up to
    # 5 ms for the loop to get the GIL back (on the loop, only the GTD timer's and the clients'
    # own threads are left to hand it to). 0 leaves Python's own.
    gil_switch_interval_s: float = Field(0.001, ge=0.0)
    # Messages the engine's dispatcher handles, under steady load, between two flushes of its
    # journal to the store (when its queue runs dry it flushes anyway).
    engine_drain_every: int = Field(256, gt=0)
    # The garbage collector of the engine process and of its doors (``oms.gc_tuning``):
    # allocations between two young collections (a pause is bounded by it), and whether what
    # survives a collection is frozen out of later scans (False: CPython's older generations).
    gc_young_threshold: int = Field(20_000, gt=0)
    gc_freeze_survivors: bool = True
    # Records the ingestion fetches from Kafka at once (one hand-over to the engine).
    ingest_batch_size: int = Field(1000, gt=0)
    # Records handed to the engine and not yet committed (durable) at most: fetching and
    # deciding overlap the durability of what came before, up to this many. Replay after a
    # crash grows with it (what is uncommitted is fetched again; replay changes nothing).
    ingest_max_in_flight: int = Field(4000, gt=0)
    # What one fetch of the ingestion asks the broker for: it answers once this many bytes are
    # there or this long has passed, whichever comes first. Under load the bytes come first;
    # at a moderate rate (1,000 orders/s arrive a few at a time) each fetch gathers up to
    # 10 ms of orders into one hand-over, barrier and commit instead of one per arrival: the
    # service's CPU per order there fell by a seventh at 5 ms, and 10 ms cut Kafka's own CPU
    # per order in eight pairs of eight, p99 lower in seven (README "Speed"). At 1 byte and 500 ms
    # (aiokafka's defaults) every arrival is fetched at once, alone. Only while orders come:
    # once a fetch finds nothing for 200 ms the ingestion's fetches go back to 1 byte and
    # 500 ms until the next record (``oms.stream.fetch_pacing``), so an idle replica does not
    # fetch every 10 ms and a first order after a quiet spell is fetched at once.
    ingest_fetch_min_bytes: int = Field(65_536, gt=0)
    ingest_fetch_max_wait_ms: int = Field(10, ge=0)
    # The least time from one commit barrier's start to the next's (``oms.stream.commit_barrier``)
    # while nothing hurries it (a stop, a rebalance, half of ``ingest_max_in_flight`` in flight).
    # A barrier makes the store write all it holds and Kafka take an offset commit; at 1,000
    # orders/s one per fetch was 50-72 a second, 10 with 100 ms between them: Kafka's CPU per
    # order there fell in eleven interleaved pairs of eleven, p99 even (README "Speed").
    # Orders do not wait for it: their events go out once the store has them. A crash replays
    # up to this much more, and replay changes nothing.
    ingest_commit_interval_ms: int = Field(100, ge=0)
    # How long the producer of the command path (POST -> orders: a 202 waits for its ack) and
    # of the event path (order-events) waits for more records before it sends a batch. With
    # one request in flight per broker, batches still grow under load while one is on its way.
    orders_linger_ms: int = Field(0, ge=0)
    events_linger_ms: int = Field(0, ge=0)
    # The store's group commit: at most this many order documents per insert_many, this long
    # a wait for more when a write finds few (and nobody waits on a barrier), and this many
    # writes in flight at once.
    store_max_batch: int = Field(1000, gt=0)
    store_linger_s: float = Field(0.002, ge=0.0)
    store_concurrency: int = Field(2, gt=0)
    # When a batch counts as durable (oms.store.mongo_writer): "behind" once the recovery log
    # has it, ``orders`` written after it by the projectors (at most store_max_unprojected
    # documents behind, then the writers wait); "inline" only once ``orders`` has it too (the
    # old way, kept to measure). Same guarantee either way: recovery reads the log, never
    # ``orders``, and writes again what ``orders`` may lack.
    store_projection: Literal["behind", "inline"] = "behind"
    store_max_unprojected: int = Field(8000, gt=0)
    # How long a projector waits for more logged documents before it inserts into ``orders``
    # while it has fewer than store_max_batch and nobody waits on ``orders`` (a checkpoint, a
    # flush, a stop cut it short): behind the durable point, so no event or commit waits for
    # it (oms.store.mongo_writer). At 1,000 orders/s over Kafka it took ``orders`` from ~60
    # inserts a second to ~24 and FerretDB's CPU per order down by a fifth; p99 fell in 7 of 8
    # interleaved pairs against 0, and 0.2 s did no better (README "Speed", session 20).
    store_project_linger_s: float = Field(0.05, ge=0.0)
    # Where the order store's writer runs in ``oms serve``: "service", on the serving loop
    # beside the ingestion and the event sink; "own", on a loop and thread of its own (the way
    # before session 15). One loop fewer is one thread fewer handing the GIL and a wake-up
    # across threads less per write; at 1,000 orders/s over Kafka p99 fell in eight of nine
    # interleaved pairs (README "Speed"). The engine's blocking barrier waits on the
    # writer from the engine's own thread either way; nothing on the serving loop blocks on it
    # (``MongoWriter.flush`` refuses to run on the writer's loop).
    store_loop: Literal["service", "own"] = "service"
    # Where the engine's dispatcher runs in ``oms serve``: "service", in turns of the serving
    # loop (at most engine_drain_every messages a turn, the loop's I/O between turns), so that
    # a batch the ingestion hands over, and the replies and journal it makes, cross no thread;
    # "own", on a thread of its own (the way before session 16). Over Kafka, six interleaved
    # pairs: full load higher and p99 at 1,000/s lower in five of six (README "Speed").
    # Nothing on the serving loop may block on the engine: ``get()`` there is refused.
    engine_loop: Literal["service", "own"] = "service"
    # The door's middlewares: "folded" runs the access log and metrics in one, auth and the rate
    # limit in another (oms.api.door); "layered" mounts the four separately. Same behaviour.
    http_middleware: Literal["folded", "layered"] = "folded"
    # Local servers only (devenv, the test suites' private servers): FerretDB's SQLite
    # `synchronous` pragma, on its write-ahead log. "full" syncs the log on every commit;
    # "normal" syncs it only at checkpoints: a crash of FerretDB or of the process loses
    # nothing, a power loss or an OS crash can lose the last commits.
    devenv_sqlite_synchronous: Literal["full", "normal"] = "normal"
    # Identity (README "Who may do what"). A replica remembers what it read of an API key for
    # this long, so a revoked key stops working on every replica within it (the issue asks 10 s).
    api_key_cache_ttl_s: float = 5.0
    # A WebSocket ticket (POST /api/ws-ticket) is good for one socket within this many seconds.
    ws_ticket_ttl_s: int = 30
    # JWT bearer tokens from an OAuth2/OIDC provider: off unless a JWKS URL or a PEM public key
    # is set. Issuer and audience are then required; only asymmetric algorithms are accepted
    # (never "none", never HS256, which would take the public key as a shared secret).
    jwt_jwks_url: str = ""
    jwt_public_key: str = ""
    jwt_issuer: str = ""
    jwt_audience: str = Field("", validate_default=True)  # checked with the fields above it
    jwt_algorithms: CommaSeparated = ("RS256", "ES256")
    # The claims naming the caller's role (admin, risk, trader, viewer) and its accounts (a
    # list, or one space- or comma-separated string).
    jwt_role_claim: str = "role"
    jwt_accounts_claim: str = "accounts"
    # How long a fetched JWKS document is used before it is fetched again (a token signed by a
    # key id it lacks fetches it at once, at most once per jwt_jwks_min_refetch_s).
    jwt_jwks_ttl_s: float = 300.0
    jwt_jwks_min_refetch_s: float = 10.0
    # Clock skew allowed on exp/nbf/iat.
    jwt_leeway_s: float = 10.0

    model_config = SettingsConfigDict(
        env_prefix="OMS_",
        case_sensitive=True,
        # Read once at start and shared by every thread: nothing may change it afterwards.
        frozen=True,
        # A misspelt keyword in code is a bug: refuse it (unknown OMS_* variables never get
        # this far: the environment source reads only the fields' own variables).
        extra="forbid",
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """``Settings(...)`` is keywords over defaults: only ``from_env`` reads the environment.

        So a test's ``Settings(simulated_feed=False)`` never depends on the shell it runs in
        (an ``OMS_FAULT_FAIL_ORDER_AT`` left exported would otherwise break the unit tests).
        """
        return (init_settings,)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``OMS_<FIELD>`` variables (upper case), defaults elsewhere."""
        values = _Variables(cls, os.environ if environ is None else environ)()
        try:
            return cls(**values)
        except ValidationError as exc:
            raise SettingsError(_describe(cls, exc, values)) from exc

    def replace(self, **changes: Any) -> Settings:
        """A copy with ``changes`` applied and checked (``dataclasses.replace`` for settings).

        Not ``model_copy(update=...)``: that checks neither the names nor the values.
        """
        return type(self)(**{**self.model_dump(), **changes})

    @field_validator("jwt_audience")
    @classmethod
    def _jwt_complete(cls, audience: str, info: ValidationInfo) -> str:
        """A JWT key without an issuer and an audience would take tokens minted for anyone."""
        keyed = info.data.get("jwt_public_key") or info.data.get("jwt_jwks_url")
        if keyed and not (audience and info.data.get("jwt_issuer")):
            raise ValueError(
                "OMS_JWT_ISSUER and OMS_JWT_AUDIENCE are required with OMS_JWT_PUBLIC_KEY or "
                "OMS_JWT_JWKS_URL"
            )
        return audience

    @field_validator("jwt_algorithms")
    @classmethod
    def _asymmetric_only(cls, algorithms: tuple[str, ...]) -> tuple[str, ...]:
        """Only public-key signatures: HS* would verify with the public key as a shared secret
        (anyone holding it could sign), and "none" verifies nothing."""
        refused = [a for a in algorithms if a not in ASYMMETRIC_JWT_ALGORITHMS]
        if refused or not algorithms:
            raise ValueError(
                "must be one or more of " + ", ".join(sorted(ASYMMETRIC_JWT_ALGORITHMS))
            )
        return algorithms

    def venue_credentials(self) -> tuple[str, str]:
        """The venue's API key and secret, from ``venue_secrets_file`` when set.

        Raises ``SettingsError`` when either is missing or the file cannot be read: a ccxt
        venue without keys could only fail every order.
        """
        key = self.venue_api_key.get_secret_value()
        secret = self.venue_api_secret.get_secret_value()
        if self.venue_secrets_file:
            try:
                with open(self.venue_secrets_file, "rb") as file:
                    stored = orjson.loads(file.read())
            except (OSError, orjson.JSONDecodeError) as exc:
                raise SettingsError(
                    f"OMS_VENUE_SECRETS_FILE={self.venue_secrets_file!r} is not readable JSON "
                    f"({type(exc).__name__})"
                ) from None
            if not isinstance(stored, dict):
                raise SettingsError("OMS_VENUE_SECRETS_FILE must hold a JSON object")
            key = str(stored.get("api_key", ""))
            secret = str(stored.get("api_secret", ""))
        if not key or not secret:
            raise SettingsError(
                "OMS_VENUE=ccxt needs OMS_VENUE_API_KEY and OMS_VENUE_API_SECRET "
                "(or OMS_VENUE_SECRETS_FILE)"
            )
        return key, secret

    def replica_name(self) -> str:
        """This process's name in logs and metrics: ``replica``, else the host's name."""
        return self.replica or socket.gethostname()

    def advertised_url(self) -> str:
        """Where the other replicas reach this one: ``advertise_url``, else the listener's."""
        if self.advertise_url:
            return self.advertise_url.rstrip("/")
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):
            # Listening on every address: the host's own (a pod's /etc/hosts maps its name to
            # its IP, which other pods reach; its bare name they cannot resolve).
            try:
                host = socket.gethostbyname(socket.gethostname())
            except OSError:
                host = socket.gethostname()
        return f"http://{host}:{self.http_port}"

    def engine_port(self) -> int:
        """Where the engine process listens when doors serve ``http_port`` (``http_workers``)."""
        return self.http_internal_port or self.http_port + 1

    def door_metrics_port_of(self, index: int) -> int:
        """The port of door ``index``'s own ``/metrics``."""
        return (self.door_metrics_port or self.engine_port() + 1) + index

    def engine_url(self) -> str:
        """How a door reaches its engine process: on this host, at ``engine_port``."""
        host = self.http_host
        if host in ("0.0.0.0", "::", ""):
            host = "127.0.0.1"
        return f"http://{host}:{self.engine_port()}"


class _Variables(PydanticBaseSettingsSource):
    """The ``OMS_<FIELD>`` variables of a mapping (``os.environ`` in production), as text."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._environ = environ

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The field's variable's text (None when unset), and the field it goes to."""
        return self._environ.get(variable_name(self.settings_cls, field_name)), field_name, False

    def __call__(self) -> dict[str, Any]:
        """The fields whose variable is set; unknown ``OMS_*`` variables are ignored."""
        values: dict[str, Any] = {}
        for name, field in self.settings_cls.model_fields.items():
            raw, key, _ = self.get_field_value(field, name)
            if raw is not None:
                values[key] = raw
        return values


def variable_name(settings_cls: type[BaseSettings], field_name: str) -> str:
    """The environment variable of a field: ``http_port`` -> ``OMS_HTTP_PORT``."""
    return f"{settings_cls.model_config.get('env_prefix', '')}{field_name.upper()}"


def _describe(
    settings_cls: type[BaseSettings], exc: ValidationError, values: Mapping[str, Any]
) -> str:
    """Name each variable pydantic refused, with its text, what it must be and why."""
    problems = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else ""
        field = settings_cls.model_fields.get(name)
        wanted = _wanted(field.annotation) if field is not None else "a valid setting"
        raw = values.get(name, error.get("input"))
        problems.append(
            f"{variable_name(settings_cls, name)}={raw!r} is not {wanted} ({error['msg']})"
        )
    return "; ".join(problems)


def _wanted(annotation: object) -> str:
    """What a field takes: ``a valid int``, ``a valid tuple[str, ...]``, ``one of json, text``."""
    if get_origin(annotation) is Literal:
        return "one of " + ", ".join(str(choice) for choice in get_args(annotation))
    if isinstance(annotation, type):
        return f"a valid {annotation.__name__}"
    return f"a valid {annotation}"
